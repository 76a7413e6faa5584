// SHA-256 in the APPSYNC_JS subset (no charCodeAt, no for(;;), no ~, no regex): the
// Python side derives order ids, execution names and request ids from SHA-256 digests
// (domain/saga.py, adapters/eventbridge.py), and util has no hash function.

const SHA256_K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];
const SHA256_H0 = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const HEX_DIGITS = '0123456789abcdef';
const HEX_UPPER = '0123456789ABCDEF';
// Printable ASCII from the space on: a character's index here plus 32 is its code.
const PRINTABLE_ASCII =
  ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';
const ZERO_BYTES = SHA256_K.map(() => 0);
const NIBBLE_SHIFTS = [28, 24, 20, 16, 12, 8, 4, 0];

// The UTF-8 bytes of `text`: util.urlEncode gives them as %XX for everything but
// unreserved ASCII (and '+' for a space), so no charCodeAt is needed.
function utf8Bytes(text) {
  const bytes = [];
  let pending = '';
  let inEscape = false;
  for (const ch of util.urlEncode(text).split('')) {
    if (inEscape) {
      pending = pending + ch;
      if (pending.length === 2) {
        bytes.push(HEX_UPPER.indexOf(pending.charAt(0).toUpperCase()) * 16 +
          HEX_UPPER.indexOf(pending.charAt(1).toUpperCase()));
        pending = '';
        inEscape = false;
      }
    } else if (ch === '%') {
      inEscape = true;
    } else if (ch === '+') {
      bytes.push(32);
    } else {
      bytes.push(PRINTABLE_ASCII.indexOf(ch) + 32);
    }
  }
  return bytes;
}

function rotr(x, n) {
  return (x >>> n) | (x << (32 - n));
}

function sha256Block(state, block) {
  const w = [];
  for (const i of SHA256_K.map((_, index) => index)) {
    if (i < 16) {
      w.push(((block[i * 4] << 24) | (block[i * 4 + 1] << 16) | (block[i * 4 + 2] << 8) |
        block[i * 4 + 3]) | 0);
    } else {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w.push((w[i - 16] + s0 + w[i - 7] + s1) | 0);
    }
  }
  let [a, b, c, d, e, f, g, h] = state;
  for (const i of SHA256_K.map((_, index) => index)) {
    const s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const choice = (e & f) ^ ((e ^ 0xffffffff) & g);
    const t1 = (h + s1 + choice + SHA256_K[i] + w[i]) | 0;
    const s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const majority = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (s0 + majority) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  return [a, b, c, d, e, f, g, h].map((value, index) => (value + state[index]) | 0);
}

// The hex SHA-256 digest of `text` (UTF-8), as Python's hashlib.sha256(...).hexdigest().
function sha256Hex(text) {
  const bytes = utf8Bytes(text);
  const bitLength = bytes.length * 8;
  const padding = (((55 - bytes.length) % 64) + 64) % 64;
  const message = bytes.concat([0x80], ZERO_BYTES.slice(0, padding), [
    0, 0, 0, 0,
    (bitLength >>> 24) & 255, (bitLength >>> 16) & 255, (bitLength >>> 8) & 255, bitLength & 255,
  ]);
  let state = SHA256_H0;
  let block = [];
  for (const byte of message) {
    block.push(byte);
    if (block.length === 64) {
      state = sha256Block(state, block);
      block = [];
    }
  }
  let hex = '';
  for (const word of state) {
    for (const shift of NIBBLE_SHIFTS) {
      hex = hex + HEX_DIGITS.charAt((word >>> shift) & 15);
    }
  }
  return hex;
}
