// Subscribes with a real third-party client and reports on stdout, one JSON object a line:
//   {"event": "ready"}                      the subscription is established
//   {"event": "data", "data": {...}}        one change received
//   {"event": "error", "error": "..."}      the client reported an error (then exits 1)
// It exits 0 after `count` changes. The Python test publishes and reads these lines.
//
//   node subscribe.mjs '{"client": "graphql-ws" | "amplify", "url": "https://host:port/graphql",
//                        "auth": {"apiKey": "..."} | {"iam": {"accessKeyId", "secretAccessKey"}}
//                              | {"lambda": "TOKEN"} | {"oidc": "JWT"} | {"userPool": "JWT"},
//                        "region": "us-east-1", "query": "subscription ...", "variables": {},
//                        "extensions": {...}, "count": 1}'
//
// Each client runs exactly as an application would use it; the only help it gets is what
// Node lacks and a browser has: a WebSocket implementation (ws).
//
// Token modes: graphql-ws sends the token as `Authorization` in connection_init's payload
// (connectionParams). Amplify uses authMode 'lambda' with `authToken`, or 'oidc' / 'userPool'
// with a token provider that hands out the JWT (Amplify sends its accessToken).

import WebSocket from 'ws';

const config = JSON.parse(process.argv[2]);

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function fail(error) {
  report({ event: 'error', error: typeof error === 'string' ? error : JSON.stringify(error, Object.getOwnPropertyNames(error ?? {})) });
  process.exit(1);
}

// The token of a token mode (lambda, oidc, userPool), or undefined.
function tokenOf(auth) {
  return auth.lambda ?? auth.oidc ?? auth.userPool;
}

// Amplify's authMode for `auth`.
function authModeOf(auth) {
  for (const mode of ['iam', 'lambda', 'oidc', 'userPool']) if (auth[mode]) return mode;
  return 'apiKey';
}

let received = 0;
function onData(data) {
  report({ event: 'data', data });
  received += 1;
  if (received >= config.count) process.exit(0);
}

async function withGraphqlWs() {
  const { createClient } = await import('graphql-ws');
  const client = createClient({
    url: config.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    // Browsers cannot set WebSocket headers: the credentials travel in connection_init.
    connectionParams: tokenOf(config.auth)
      ? { Authorization: tokenOf(config.auth) }
      : { 'x-api-key': config.auth.apiKey },
    retryAttempts: 0,
    lazy: false,
    on: { connected: () => report({ event: 'connected' }) },
  });
  client.subscribe(
    { query: config.query, variables: config.variables ?? {}, extensions: config.extensions },
    {
      next: (result) => (result.errors ? fail(result.errors) : onData(result.data)),
      error: fail,
      complete: () => fail('the server completed the subscription'),
    },
  );
  // graphql-transport-ws has no per-subscription acknowledgement: the test publishes until the
  // first change arrives.
  report({ event: 'ready' });
}

async function withAmplify() {
  globalThis.WebSocket = WebSocket;
  const { Amplify } = await import('aws-amplify');
  const { generateClient } = await import('aws-amplify/api');
  const { Hub } = await import('aws-amplify/utils');
  const { decodeJWT } = await import('aws-amplify/auth');
  const { auth } = config;
  const authMode = authModeOf(auth);
  let libraryOptions = {};
  if (authMode === 'iam') {
    libraryOptions = {
      Auth: {
        credentialsProvider: {
          getCredentialsAndIdentityId: async () => ({ credentials: auth.iam }),
          clearCredentialsAndIdentityId: () => {},
        },
      },
    };
  } else if (authMode === 'oidc' || authMode === 'userPool') {
    // As an app signed in with its own identity provider: the token provider hands the JWT out.
    const jwt = decodeJWT(tokenOf(auth));
    libraryOptions = {
      Auth: { tokenProvider: { getTokens: async () => ({ accessToken: jwt, idToken: jwt }) } },
    };
  }
  Amplify.configure(
    {
      API: {
        GraphQL: {
          endpoint: config.url,
          region: config.region,
          defaultAuthMode: authMode,
          apiKey: auth.apiKey,
        },
      },
    },
    libraryOptions,
  );
  Hub.listen('api', ({ payload }) => {
    if (payload.event === 'Subscription ack') report({ event: 'ready' });
  });
  const client = generateClient();
  const request = { query: config.query, variables: config.variables ?? {}, authMode };
  if (authMode === 'lambda') request.authToken = auth.lambda;
  client.graphql(request).subscribe({ next: ({ data }) => onData(data), error: fail });
}

setTimeout(() => fail(`no ${config.count} changes within ${config.timeoutMs ?? 60000} ms`), config.timeoutMs ?? 60000);
await (config.client === 'amplify' ? withAmplify() : withGraphqlWs());
