// The ISO 4217 currencies the shop sells in (domain/currencies.py).
const SUPPORTED_CURRENCIES = [
  'AUD', 'CAD', 'CHF', 'DKK', 'EUR', 'GBP', 'JPY', 'NOK', 'NZD', 'SEK', 'SGD', 'USD',
];
