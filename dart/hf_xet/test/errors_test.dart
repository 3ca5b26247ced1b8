// Errors surfaced as XetException subclasses, cancellation, and HfXet's setup calls,
// against `xet serve` on loopback (tool/test.sh).
import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:hf_xet/hf_xet.dart';

import 'harness.dart';
import 'support.dart';

Future<void> main() async {
  final s = Suite();

  s.test('HfXet.ensureInitialized, initialized, isSupported (false until initialized), HfXet()', () async {
    // The first test of this process: nothing has initialized the library yet.
    expect(!HfXet.initialized, 'not initialized in a fresh process');
    expect(!HfXet.isSupported(), 'isSupported() is false before ensureInitialized, as in the original');
    expect(identical(HfXet(), HfXet()), 'HfXet() is a singleton');
    expect(HfXet.nativeVersion.isNotEmpty, 'a native version');
    final home = tempDir('init').path;
    final ok = await HfXet.ensureInitialized(
        throwOnFail: true, huggingfaceHubVersion: '0.30.0', huggingfaceHome: () => home);
    expect(ok, 'ensureInitialized returned true');
    expect(HfXet.initialized, 'initialized after ensureInitialized');
    expect(HfXet.isSupported(), 'supported once initialized');
    expectEquals(HfXet.getHuggingfaceHome?.call(), home, 'getHuggingfaceHome set');
    HfXet.getHuggingfaceHome = null;
    // Once initialized, later calls succeed at once and change nothing.
    expect(await HfXet.ensureInitialized(huggingfaceHome: () => '/elsewhere'), 'second call');
    expectEquals(HfXet.getHuggingfaceHome, null, 'a second call changes nothing');
  });

  s.test('HfXet().huggingfaceHubVersion goes into the user agent of later calls', () async {
    // A stand-in server that records each request's User-Agent and rejects it.
    final server = await HttpServer.bind(InternetAddress.loopbackIPv4, 0);
    final agents = <String>[];
    server.listen((req) async {
      agents.add(req.headers.value(HttpHeaders.userAgentHeader) ?? '');
      await req.drain<void>();
      req.response.statusCode = HttpStatus.badRequest;
      await req.response.close();
    });
    try {
      HfXet().huggingfaceHubVersion = '9.8.7-test';
      await expectThrows<XetException>(
          uploadBytes(
              fileContents: [data(1000, 59)],
              endpoint: 'http://127.0.0.1:${server.port}',
              tokenInfo: ('t', BigInt.from(DateTime.now().millisecondsSinceEpoch ~/ 1000 + 3600))),
          'upload to a server that rejects everything');
      expect(agents.isNotEmpty, 'the server was called');
      expect(agents.every((a) => a.contains('hf_xet-dart/') && a.contains('huggingface_hub/9.8.7-test')),
          'the hub version in every user agent: $agents');
    } finally {
      HfXet().huggingfaceHubVersion = null;
      await server.close(force: true);
    }
  });

  s.test('XetException.fromCode maps every ABI code to its subclass', () {
    final want = <int, Type>{
      1: XetInvalidArgumentException,
      2: XetUnknownHandleException,
      3: XetCancelledException,
      4: XetIoException,
      5: XetNetworkException,
      6: XetAuthException,
      7: XetNotFoundException,
      8: XetCorruptException,
      9: XetRangeException,
      10: XetInternalException,
    };
    want.forEach((code, type) {
      final e = XetException.fromCode(code, 'm');
      expectEquals(e.runtimeType, type, 'code $code');
      expectEquals(e.code, code, 'code kept');
    });
    expectEquals(XetException.fromCode(99, 'm').runtimeType, XetException, 'unknown code');
  });

  s.test('a malformed hash: XetInvalidArgumentException', () async {
    final dir = tempDir('badhash');
    final e = await expectThrows<XetInvalidArgumentException>(
        downloadFiles(
            files: [DartXetDownloadInfo(destinationPath: '${dir.path}/x', hash: 'not-hex', fileSize: BigInt.one)],
            endpoint: endpoint,
            tokenInfo: await casToken(write: false)),
        'download');
    expect(e.message.isNotEmpty, 'a message');
  });

  s.test('an unknown file hash: XetNotFoundException, nothing written', () async {
    final dir = tempDir('unknown');
    final dest = '${dir.path}/x';
    await expectThrows<XetNotFoundException>(
        downloadFiles(
            files: [DartXetDownloadInfo(destinationPath: dest, hash: randomHash(), fileSize: BigInt.from(10))],
            endpoint: endpoint,
            tokenInfo: await casToken(write: false)),
        'download');
    expect(!File(dest).existsSync(), 'no file at the destination');
  });

  s.test('a missing local file: XetIoException naming it', () async {
    final missing = '${tempDir('missing').path}/does-not-exist.bin';
    final e = await expectThrows<XetIoException>(
        uploadFiles(filePaths: [missing], endpoint: endpoint, tokenInfo: await casToken()), 'upload');
    expect(e.message.contains('does-not-exist.bin'), 'the path in the message: ${e.message}');
  });

  s.test('a range beyond the file: XetRangeException', () async {
    final content = data(5000, 50);
    final up = await uploadBytes(fileContents: [content], endpoint: endpoint, tokenInfo: await casToken());
    await expectThrows<XetRangeException>(
        downloadFiles(files: [
          DartXetDownloadInfo(
              destinationPath: '${tempDir('range').path}/x',
              hash: up[0].hash,
              fileSize: up[0].fileSize,
              range: (BigInt.from(6000), BigInt.from(7000))),
        ], endpoint: endpoint, tokenInfo: await casToken(write: false)),
        'download');
  });

  s.test('an unreachable endpoint: XetNetworkException', () async {
    // Port 1 on loopback: nothing listens there, connections are refused at once.
    await expectThrows<XetNetworkException>(
        uploadBytes(
            fileContents: [data(1000, 51)],
            endpoint: 'http://127.0.0.1:1',
            tokenInfo: ('t', BigInt.from(DateTime.now().millisecondsSinceEpoch ~/ 1000 + 3600))),
        'upload');
  });

  s.test('cancel right after the start: XetCancelledException', () async {
    final token = XetCancelToken();
    final f = uploadBytes(fileContents: [data(2 << 20, 52)], endpoint: endpoint, tokenInfo: await casToken(), cancelToken: token);
    token.cancel();
    expect(token.isCancelled, 'isCancelled');
    final e = await expectThrows<XetCancelledException>(f, 'upload');
    expectEquals(e.code, 3, 'code');
  });

  s.test('an already cancelled token fails without starting', () async {
    final token = XetCancelToken()..cancel();
    await expectThrows<XetCancelledException>(
        uploadBytes(fileContents: [data(10, 53)], endpoint: endpoint, tokenInfo: await casToken(), cancelToken: token),
        'upload');
  });

  s.test('cancel from a progress callback in the middle of a download; other operations unaffected', () async {
    final first = data(300 * 1024, 54);
    final second = data(200 * 1024, 60);
    final up = await uploadBytes(fileContents: [first, second], endpoint: endpoint, tokenInfo: await casToken());
    final dir = tempDir('cancel');
    final files = [
      DartXetDownloadInfo(destinationPath: '${dir.path}/a', hash: up[0].hash, fileSize: up[0].fileSize),
      DartXetDownloadInfo(destinationPath: '${dir.path}/b', hash: up[1].hash, fileSize: up[1].fileSize),
    ];
    final other = DartXetDownloadInfo(destinationPath: '${dir.path}/o', hash: up[0].hash, fileSize: up[0].fileSize);
    // The server's CAS tokens live less than the client's 30 s refresh margin, so each
    // file's reconstruction asks the refresher for a token. Once the first progress
    // report has arrived (and cancelled), the refresher holds its answer: the second
    // file cannot start, so the download cannot finish unless the cancel works, however
    // late the progress report reaches this isolate.
    final ttl = (await fetchCasToken()).expiration.toInt() - DateTime.now().millisecondsSinceEpoch ~/ 1000;
    expect(ttl < 30, 'server token TTL below the refresh margin (got $ttl s)');
    final token = XetCancelToken();
    final held = Completer<DartTokenInfo>();
    var progressSeen = false;
    final op = downloadFilesWithProgress(
      files: files,
      endpoint: endpoint,
      tokenRefresher: () => progressSeen ? held.future : fetchCasToken(write: false),
      progressUpdater: (name, total, items) {
        if (progressSeen) return;
        progressSeen = true;
        token.cancel();
      },
      cancelToken: token,
    );
    final otherFuture = downloadFiles(files: [other], endpoint: endpoint, tokenInfo: await casToken(write: false));
    // The stream ends with the cancellation error: handled here, the result says it too.
    final sub = op.progress.listen((_) {}, onError: (Object _) {});
    await expectThrows<XetCancelledException>(op.result, 'the cancelled download');
    expect(progressSeen, 'cancelled from the progress callback');
    expect(!File(files[1].destinationPath).existsSync(), 'the second file was never written');
    // A late answer to a request of the finished operation is refused quietly.
    held.complete(DartTokenInfo(token: 'late', expiration: BigInt.zero));
    await sub.cancel();
    await otherFuture;
    expectBytes(File(other.destinationPath).readAsBytesSync(), first, 'the other download');
  });

  s.test('a throwing progress callback stops the upload with its error', () async {
    final e = await expectThrows<StateError>(
        uploadBytes(
            fileContents: [data(600 * 1024, 55)],
            endpoint: endpoint,
            tokenInfo: await casToken(),
            progressUpdater: (total, items) => throw StateError('stop here')),
        'upload');
    expect(e.message == 'stop here', 'the callback error');
  });

  s.test('a progress callback whose Future fails stops the upload with its error', () async {
    final e = await expectThrows<StateError>(
        uploadBytes(
            fileContents: [data(600 * 1024, 61)],
            endpoint: endpoint,
            tokenInfo: await casToken(),
            progressUpdater: (total, items) async {
              await Future<void>.delayed(Duration.zero);
              throw StateError('async stop');
            }),
        'upload');
    expect(e.message == 'async stop', 'the callback error, got ${e.message}');
  });

  s.test('a download progress callback whose Future fails stops the download with its error', () async {
    final up = await uploadBytes(fileContents: [data(200 * 1024, 62)], endpoint: endpoint, tokenInfo: await casToken());
    final dest = '${tempDir('asyncfail').path}/x';
    final op = downloadFilesWithProgress(
        files: [DartXetDownloadInfo(destinationPath: dest, hash: up[0].hash, fileSize: up[0].fileSize)],
        endpoint: endpoint,
        tokenInfo: await casToken(write: false),
        progressUpdater: (name, total, items) => Future<void>.error(ArgumentError('async download stop')));
    final streamError = Completer<Object>();
    op.progress.listen((_) {}, onError: (Object e) {
      if (!streamError.isCompleted) streamError.complete(e);
    });
    final e = await expectThrows<ArgumentError>(op.result, 'download');
    expectEquals(e.message, 'async download stop', 'the callback error');
    expect(await streamError.future is ArgumentError, 'the stream ends with the same error');
  });

  s.test('cancelToken shared by two uploads cancels both', () async {
    final token = XetCancelToken();
    final t = await casToken();
    final a = uploadBytes(fileContents: [data(2 << 20, 56)], endpoint: endpoint, tokenInfo: t, cancelToken: token);
    final b = uploadBytes(fileContents: [data(2 << 20, 57)], endpoint: endpoint, tokenInfo: t, cancelToken: token);
    token.cancel();
    // Both handled at once: an error on `b` while only `a` is awaited would be uncaught.
    await Future.wait([
      expectThrows<XetCancelledException>(a, 'first'),
      expectThrows<XetCancelledException>(b, 'second'),
    ]);
  });

  s.test('uploadBytes copies the buffers before returning', () async {
    final buf = data(50 * 1024, 58);
    final expected = Uint8List.fromList(buf);
    final f = uploadBytes(fileContents: [buf], endpoint: endpoint, tokenInfo: await casToken());
    buf.fillRange(0, buf.length, 0);
    final up = await f;
    final copy = File('${tempDir('copy').path}/e.bin')..writeAsBytesSync(expected);
    expectEquals(up.single.hash, (await xetHash(copy.path)).$1, 'hash of the original contents');
  });

  await s.run();
}
