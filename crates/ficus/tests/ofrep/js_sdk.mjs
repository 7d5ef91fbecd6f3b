// OpenFeature's JavaScript server SDK with its OFREP provider against a running ficus.
// Usage: node js_sdk.mjs BASE_URL KEY PHASE; prints one JSON object of what it saw (the same
// shape as python_sdk.py's).
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const [baseUrl, key] = process.argv.slice(2);
await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl, headers: [['Authorization', `Bearer ${key}`]] }),
);
const client = OpenFeature.getClient();
const ctx = { targetingKey: 'user-1', plan: 'pro' };
const out = {};
let d = await client.getBooleanDetails('new-checkout', false, ctx);
out.bool = [d.value, d.variant, d.reason, d.errorCode ?? null];
d = await client.getStringDetails('theme', 'fallback', ctx);
out.string = [d.value, d.variant, d.reason];
d = await client.getNumberDetails('page-size', 1, ctx);
out.integer = [d.value, d.variant, d.reason];
d = await client.getNumberDetails('ratio', 0, ctx);
out.float = [d.value, d.variant];
d = await client.getObjectDetails('banner', {}, ctx);
out.object = [d.value, d.variant];
d = await client.getBooleanDetails('missing-flag', true, ctx);
out.missing = [d.value, d.reason, d.errorCode];
d = await client.getStringDetails('new-checkout', 'wrong-type', ctx);
out.type_mismatch = [d.value, d.errorCode];
console.log(JSON.stringify(out));
await OpenFeature.close();
