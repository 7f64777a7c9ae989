import { describe, expect, it } from 'vitest';
import { isSecretName, redactUrl } from '../../core/redact.js';

describe('redactUrl', () => {
  it.each([
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://bus.example:8080/base/', 'http://bus.example:8080/base/'],
    ['http://user:pw@bus.example:8080', 'http://***@bus.example:8080'],
    ['https://only-a-token@bus.example/v1', 'https://***@bus.example/v1'],
    // The password itself may contain '@': everything up to the authority's last '@' goes.
    ['http://user:p@ss@bus.example/x?y=1', 'http://***@bus.example/x?y=1'],
    // An '@' after the authority is not userinfo.
    ['http://bus.example/users/a@b.c', 'http://bus.example/users/a@b.c'],
    ['http://127.0.0.1:8080/metrics?token=abc123', 'http://127.0.0.1:8080/metrics?token=***'],
    ['http://h/metrics?format=prom&api_key=K&x=1', 'http://h/metrics?format=prom&api_key=***&x=1'],
    ['http://h/m?access_token=a&Signature=b&sig=c&X-Amz-Signature=d&apiKey=e&client_secret=f&password=g&auth=h&key=i', 'http://h/m?access_token=***&Signature=***&sig=***&X-Amz-Signature=***&apiKey=***&client_secret=***&password=***&auth=***&key=***'],
    ['http://h/m?monkey=1&author=me&keyword=x&page=2', 'http://h/m?monkey=1&author=me&keyword=x&page=2'],
    ['http://u:p@h/m?token=t#access_token=z&state=ok', 'http://***@h/m?token=***#access_token=***&state=ok'],
    ['http://h/m#section-2', 'http://h/m#section-2'],
    ['http://h/m?flag&token', 'http://h/m?flag&token'],
    ['http://h/m?to%6Ben=abc', 'http://h/m?to%6Ben=***'],
    ['not a url at all', 'not a url at all'],
    ['', ''],
  ])('%s -> %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it('is idempotent', () => {
    const once = redactUrl('http://u:p@h:1/m?token=t&x=1');
    expect(redactUrl(once)).toBe(once);
  });
});

describe('isSecretName', () => {
  it.each(['token', 'TOKEN', 'key', 'secret', 'password', 'passwd', 'auth', 'signature', 'sig', 'access_token', 'api_key', 'apiKey', 'accesstoken', 'X-Amz-Credential', 'authToken', 'private_key'])('%s is secret', (name) => {
    expect(isSecretName(name)).toBe(true);
  });
  it.each(['monkey', 'author', 'keyword', 'format', 'page', 'signal', 'topic', 'id'])('%s is not', (name) => {
    expect(isSecretName(name)).toBe(false);
  });
});
