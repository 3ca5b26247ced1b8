// Tokens against `xet serve` with a short --token-ttl (tool/test.sh): the
// tokenRefresher is asked for CAS tokens through the ABI's token_request callback,
// fetched from the server's Hub-style token endpoint with dart:io's HttpClient.
import 'dart:io';

import 'package:hf_xet/hf_xet.dart';

import 'harness.dart';
import 'support.dart';

Future<void> main() async {
  final s = Suite();

  s.test('tokenRefresher alone: asked for tokens, upload and download succeed', () async {
    var calls = 0;
    Future<DartTokenInfo> refresher() async {
      calls++;
      return fetchCasToken();
    }

    final content = data(120 * 1024, 40);
    final up = await uploadBytes(fileContents: [content], endpoint: endpoint, tokenRefresher: refresher);
    expect(calls >= 1, 'the refresher was called (called $calls times)');
    final uploadCalls = calls;
    final dir = tempDir('refresh');
    final out = '${dir.path}/out';
    await downloadFiles(
        files: [DartXetDownloadInfo(destinationPath: out, hash: up[0].hash, fileSize: up[0].fileSize)],
        endpoint: endpoint,
        tokenRefresher: refresher);
    expect(calls > uploadCalls, 'the refresher was called for the download too');
    expectBytes(File(out).readAsBytesSync(), content, 'downloaded');
  });

  s.test('an initial token within the refresh margin (short TTL) is refreshed', () async {
    final initial = await fetchCasToken();
    final ttl = initial.expiration.toInt() - DateTime.now().millisecondsSinceEpoch ~/ 1000;
    // The server runs with a TTL below the client's 30 s refresh margin, so the token
    // handed in is already "about to expire" and the library must ask for a new one.
    expect(ttl < 30, 'server token TTL below the refresh margin (got $ttl s)');
    var calls = 0;
    final up = await uploadBytes(
      fileContents: [data(64 * 1024, 41)],
      endpoint: endpoint,
      tokenInfo: (initial.token, initial.expiration),
      tokenRefresher: () {
        calls++;
        return fetchCasToken();
      },
    );
    expect(isHex64(up.single.hash), 'uploaded');
    expect(calls >= 1, 'the refresher was called (called $calls times)');
  });

  s.test('a refused token is replaced through the refresher', () async {
    var calls = 0;
    final far = BigInt.from(DateTime.now().millisecondsSinceEpoch ~/ 1000 + 3600);
    final up = await uploadBytes(
      fileContents: [data(10 * 1024, 42)],
      endpoint: endpoint,
      tokenInfo: ('not-a-valid-token', far),
      tokenRefresher: () async {
        calls++;
        return fetchCasToken();
      },
    );
    expect(isHex64(up.single.hash), 'uploaded after the 401');
    expect(calls >= 1, 'the refresher was called after the 401');
  });

  s.test('a wrong token without refresher fails with XetAuthException', () async {
    final far = BigInt.from(DateTime.now().millisecondsSinceEpoch ~/ 1000 + 3600);
    final e = await expectThrows<XetAuthException>(
        uploadBytes(fileContents: [data(1000, 43)], endpoint: endpoint, tokenInfo: ('wrong', far)), 'upload');
    expectEquals(e.code, 6, 'code');
    expect(e.message.isNotEmpty, 'a message');
  });

  s.test('a read token cannot upload', () async {
    final read = await fetchCasToken(write: false);
    final e = await expectThrows<XetException>(
        uploadBytes(
            fileContents: [data(2000, 44)], endpoint: endpoint, tokenInfo: (read.token, read.expiration)),
        'upload with a read token');
    expect(e is XetAuthException, 'XetAuthException, got $e');
  });

  s.test('a throwing tokenRefresher fails the operation with XetAuthException and its message', () async {
    var calls = 0;
    final e = await expectThrows<XetAuthException>(
        uploadBytes(
          fileContents: [data(3000, 45)],
          endpoint: endpoint,
          tokenRefresher: () {
            calls++;
            throw StateError('no credentials here');
          },
        ),
        'upload');
    expect(calls >= 1, 'the refresher was called');
    expect(e.message.contains('no credentials here'), 'the refresher error in the message: ${e.message}');
  });

  s.test('a refresher using a wrong user token: the 401 surfaces as XetAuthException', () async {
    final e = await expectThrows<XetAuthException>(
        uploadBytes(
          fileContents: [data(3000, 46)],
          endpoint: endpoint,
          tokenRefresher: () => fetchCasToken(user: 'not-the-user-token'),
        ),
        'upload');
    expect(e.message.contains('401'), 'the token endpoint status in the message: ${e.message}');
  });

  await s.run();
}
