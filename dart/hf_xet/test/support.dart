// Helpers of the tests that run against `xet serve` (tool/test.sh sets the
// environment they read).
import 'dart:convert';
import 'dart:io';
import 'dart:math';
import 'dart:typed_data';

import 'package:hf_xet/hf_xet.dart';

import 'harness.dart';

String env(String name) {
  final v = Platform.environment[name];
  if (v == null || v.isEmpty) throw StateError('$name is not set: run the tests with tool/test.sh');
  return v;
}

/// The CAS server tool/test.sh started (`xet serve` on loopback).
String get endpoint => env('XET_TEST_ENDPOINT');

/// A user token that server accepts at its Hub-style token endpoint.
String get userToken => env('XET_TEST_USER_TOKEN');

/// The native `xet` binary, for independent hashes (`xet hash --json`).
String get xetBin => env('XET_BIN');

/// A fresh directory under the run's temp dir.
Directory tempDir(String name) {
  final base = Directory(env('XET_TEST_TMP'));
  return base.createTempSync('$name-');
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
Uint8List data(int len, int seed) {
  final out = Uint8List(len);
  var x = 0x9E3779B9 ^ (seed * 0x85EBCA6B) & 0xFFFFFFFF;
  if (x == 0) x = 1;
  for (var i = 0; i < len; i++) {
    x ^= (x << 13) & 0xFFFFFFFF;
    x ^= x >> 17;
    x ^= (x << 5) & 0xFFFFFFFF;
    out[i] = x & 0xFF;
  }
  return out;
}

/// Gets a CAS token from the server's Hub-style endpoint with the user token, as an
/// application's tokenRefresher would.
Future<DartTokenInfo> fetchCasToken({String? user, bool write = true}) async {
  final client = HttpClient();
  try {
    final kind = write ? 'write' : 'read';
    final req = await client.getUrl(Uri.parse('$endpoint/api/models/dart/tests/xet-$kind-token/main'));
    req.headers.set(HttpHeaders.authorizationHeader, 'Bearer ${user ?? userToken}');
    final resp = await req.close();
    final body = await resp.transform(utf8.decoder).join();
    if (resp.statusCode != 200) {
      throw HttpException('token endpoint answered ${resp.statusCode}: $body');
    }
    final j = jsonDecode(body) as Map<String, Object?>;
    return DartTokenInfo(token: j['accessToken'] as String, expiration: BigInt.from(j['exp'] as int));
  } finally {
    client.close(force: true);
  }
}

/// `(token, expiration)` for the tokenInfo parameter.
Future<(String, BigInt)> casToken({bool write = true}) async {
  final t = await fetchCasToken(write: write);
  return (t.token, t.expiration);
}

/// `xet hash --json` of [path]: (xet hash, sha256).
Future<(String, String)> xetHash(String path) async {
  final r = await Process.run(xetBin, ['hash', '--json', path]);
  if (r.exitCode != 0) throw TestFailure('xet hash failed: ${r.stderr}');
  final j = (jsonDecode(r.stdout as String) as List<Object?>).first as Map<String, Object?>;
  return (j['hash'] as String, j['sha256'] as String);
}

final _hex = RegExp(r'^[0-9a-f]{64}$');

/// Whether [s] looks like a hash string.
bool isHex64(String? s) => s != null && _hex.hasMatch(s);

/// A random valid-looking hash nobody uploaded.
String randomHash() {
  final r = Random();
  return List.generate(64, (_) => '0123456789abcdef'[r.nextInt(16)]).join();
}
