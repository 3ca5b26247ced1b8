// Uploads and downloads against `xet serve` on loopback (started by tool/test.sh):
// whole files and byte ranges, bytes and files, progress as callbacks and streams,
// and the embedded local store.
import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:hf_xet/hf_xet.dart';

import 'harness.dart';
import 'support.dart';

Future<void> main() async {
  final s = Suite();

  s.test('uploadBytes then downloadFiles returns the same bytes, hash and SHA-256', () async {
    final dir = tempDir('bytes');
    final a = data(300 * 1024, 1);
    final b = data(1, 2);
    final token = await casToken();
    final up = await uploadBytes(fileContents: [a, b], endpoint: endpoint, tokenInfo: token);
    expectEquals(up.length, 2, 'results');
    expectEquals(up[0].fileSize, BigInt.from(a.length), 'size of a');
    expectEquals(up[1].fileSize, BigInt.one, 'size of b');
    expect(isHex64(up[0].hash) && isHex64(up[1].hash), 'hex hashes, got ${up[0].hash} ${up[1].hash}');
    expect(up[0].hash != up[1].hash, 'different hashes for different contents');

    // The hash and SHA-256 agree with an independent run of `xet hash` on the bytes.
    final copy = File('${dir.path}/a.bin')..writeAsBytesSync(a);
    final (h, sha) = await xetHash(copy.path);
    expectEquals(up[0].hash, h, 'hash vs xet hash');
    expectEquals(up[0].sha256, sha, 'sha256 vs xet hash');

    final outA = '${dir.path}/out-a';
    final outB = '${dir.path}/out-b';
    final paths = await downloadFiles(files: [
      DartXetDownloadInfo(destinationPath: outA, hash: up[0].hash, fileSize: up[0].fileSize),
      DartXetDownloadInfo(destinationPath: outB, hash: up[1].hash, fileSize: up[1].fileSize),
    ], endpoint: endpoint, tokenInfo: await casToken(write: false));
    expectEquals(paths.length, 2, 'paths');
    expect(paths[0].endsWith('out-a') && paths[1].endsWith('out-b'), 'paths in request order, got $paths');
    expectBytes(File(outA).readAsBytesSync(), a, 'downloaded a');
    expectBytes(File(outB).readAsBytesSync(), b, 'downloaded b');
  });

  s.test('uploadFiles: hashes match uploadBytes of the same contents and xet hash', () async {
    final dir = tempDir('files');
    final c1 = data(200 * 1024 + 7, 3);
    final c2 = data(64 * 1024, 4);
    final f1 = File('${dir.path}/one.bin')..writeAsBytesSync(c1);
    final f2 = File('${dir.path}/two.bin')..writeAsBytesSync(c2);
    final up = await uploadFiles(filePaths: [f1.path, f2.path], endpoint: endpoint, tokenInfo: await casToken());
    expectEquals(up.length, 2, 'results');
    expectEquals(up[0].hash, (await xetHash(f1.path)).$1, 'one.bin hash');
    expectEquals(up[1].hash, (await xetHash(f2.path)).$1, 'two.bin hash');
    expectEquals(up[1].sha256, (await xetHash(f2.path)).$2, 'two.bin sha256');
    final again = await uploadBytes(fileContents: [c2], endpoint: endpoint, tokenInfo: await casToken());
    expectEquals(again[0].hash, up[1].hash, 'same contents, same hash');

    final out = '${dir.path}/dl';
    await downloadFiles(
        files: [DartXetDownloadInfo(destinationPath: out, hash: up[0].hash, fileSize: up[0].fileSize)],
        endpoint: endpoint,
        tokenInfo: await casToken(write: false));
    expectBytes(File(out).readAsBytesSync(), c1, 'downloaded one.bin');
  });

  s.test('byte-range downloads write exactly the inclusive range', () async {
    final dir = tempDir('range');
    final content = data(500 * 1024, 5);
    final up = await uploadBytes(fileContents: [content], endpoint: endpoint, tokenInfo: await casToken());
    final size = up[0].fileSize;
    final ranges = <(int, int)>[(0, 0), (1000, 70000), (123456, content.length - 1), (0, content.length - 1)];
    final files = [
      for (var i = 0; i < ranges.length; i++)
        DartXetDownloadInfo(
            destinationPath: '${dir.path}/r$i',
            hash: up[0].hash,
            fileSize: size,
            range: (BigInt.from(ranges[i].$1), BigInt.from(ranges[i].$2))),
      // A whole file in the same request as ranged ones.
      DartXetDownloadInfo(destinationPath: '${dir.path}/whole', hash: up[0].hash, fileSize: size),
    ];
    await downloadFiles(files: files, endpoint: endpoint, tokenInfo: await casToken(write: false));
    for (var i = 0; i < ranges.length; i++) {
      final (a, b) = ranges[i];
      expectBytes(File('${dir.path}/r$i').readAsBytesSync(), content.sublist(a, b + 1), 'range $a-$b');
    }
    expectBytes(File('${dir.path}/whole').readAsBytesSync(), content, 'whole file beside ranges');
  });

  s.test('upload progress callback: increments add up, items named by path', () async {
    final dir = tempDir('progress');
    final sizes = [400 * 1024, 150 * 1024];
    final paths = <String>[];
    for (var i = 0; i < sizes.length; i++) {
      final f = File('${dir.path}/p$i.bin')..writeAsBytesSync(data(sizes[i], 10 + i));
      paths.add(f.path);
    }
    final totals = <DartTotalProgressUpdate>[];
    final itemDone = <String, BigInt>{};
    final itemIncrements = <String, BigInt>{};
    await uploadFiles(
      filePaths: paths,
      endpoint: endpoint,
      tokenInfo: await casToken(),
      progressUpdater: (total, items) {
        totals.add(total);
        for (final it in items) {
          itemDone[it.itemName] = it.bytesCompleted;
          itemIncrements[it.itemName] = (itemIncrements[it.itemName] ?? BigInt.zero) + it.bytesCompletionIncrement;
        }
      },
    );
    final sum = BigInt.from(sizes[0] + sizes[1]);
    expect(totals.isNotEmpty, 'at least one progress update');
    expectEquals(totals.last.totalBytes, sum, 'final totalBytes');
    expectEquals(totals.last.totalBytesCompleted, sum, 'final totalBytesCompleted');
    expectEquals(totals.fold<BigInt>(BigInt.zero, (a, t) => a + t.totalBytesCompletionIncrement), sum,
        'sum of completion increments');
    expectEquals(totals.fold<BigInt>(BigInt.zero, (a, t) => a + t.totalBytesIncrement), sum,
        'sum of totalBytes increments');
    for (var i = 1; i < totals.length; i++) {
      expect(totals[i].totalBytesCompleted >= totals[i - 1].totalBytesCompleted, 'monotonic progress');
    }
    expect(totals.last.totalTransferBytesCompleted > BigInt.zero, 'bytes went over the network');
    for (var i = 0; i < paths.length; i++) {
      expectEquals(itemDone[paths[i]], BigInt.from(sizes[i]), 'item ${paths[i]} completed');
      expectEquals(itemIncrements[paths[i]], BigInt.from(sizes[i]), 'item ${paths[i]} increments');
    }
    expect(itemDone.keys.every(paths.contains), 'only known item names, got ${itemDone.keys}');
  });

  s.test('uploadBytesWithProgress: the stream ends at the total, before the result', () async {
    final content = data(350 * 1024, 20);
    final op = uploadBytesWithProgress(fileContents: [content], endpoint: endpoint, tokenInfo: await casToken());
    var streamDone = false;
    final events = <DartTotalProgressUpdate>[];
    final closed = Completer<void>();
    // (Not asFuture(): it would replace this onDone.)
    op.progress.listen(events.add, onDone: () {
      streamDone = true;
      closed.complete();
    });
    final result = await op.result;
    expect(streamDone, 'stream closed before the result completed');
    await closed.future;
    expectEquals(result.single.fileSize, BigInt.from(content.length), 'result size');
    expect(events.isNotEmpty, 'progress events on the stream');
    expectEquals(events.last.totalBytesCompleted, BigInt.from(content.length), 'last event completes');
  });

  s.test('download progress: callback names files, stream reaches the total', () async {
    final dir = tempDir('dlprogress');
    final content = data(450 * 1024, 21);
    final up = await uploadBytes(fileContents: [content], endpoint: endpoint, tokenInfo: await casToken());
    final dest = '${dir.path}/d.bin';
    final names = <String>{};
    final callbackTotals = <DartTotalProgressUpdate>[];
    final op = downloadFilesWithProgress(
      files: [DartXetDownloadInfo(destinationPath: dest, hash: up[0].hash, fileSize: up[0].fileSize)],
      endpoint: endpoint,
      tokenInfo: await casToken(write: false),
      progressUpdater: (name, total, items) {
        names.add(name);
        callbackTotals.add(total);
      },
    );
    final events = await op.progress.toList();
    final paths = await op.result;
    expectEquals(paths.single, dest, 'written path');
    expectBytes(File(dest).readAsBytesSync(), content, 'downloaded');
    expect(events.isNotEmpty && callbackTotals.isNotEmpty, 'progress seen on both the stream and the callback');
    expectEquals(events.length, callbackTotals.length, 'same updates on stream and callback');
    expectEquals(events.last.totalBytesCompleted, BigInt.from(content.length), 'stream reaches the size');
    expect(names.length == 1 && names.contains(dest), 'file names given to the callback: $names');
    expect(events.last.totalTransferBytesCompleted > BigInt.zero, 'bytes received over the network');
  });

  s.test('endpoint null: the embedded local store under getHuggingfaceHome', () async {
    final home = tempDir('hfhome');
    final previous = HfXet.getHuggingfaceHome;
    HfXet.getHuggingfaceHome = () => home.path;
    try {
      final content = data(100 * 1024, 30);
      final up = await uploadBytes(fileContents: [content]);
      final out = '${home.path}/out.bin';
      await downloadFiles(
          files: [DartXetDownloadInfo(destinationPath: out, hash: up[0].hash, fileSize: up[0].fileSize)]);
      expectBytes(File(out).readAsBytesSync(), content, 'round trip through the embedded store');
      // The store lives under the given home, not elsewhere.
      final stored = home.listSync(recursive: true).whereType<File>().where((f) => f.path != out).toList();
      expect(stored.isNotEmpty, 'files written under ${home.path}');
    } finally {
      HfXet.getHuggingfaceHome = previous;
    }
  });

  s.test('uploadBytes of an empty buffer', () async {
    final up = await uploadBytes(fileContents: [Uint8List(0)], endpoint: endpoint, tokenInfo: await casToken());
    expectEquals(up.single.fileSize, BigInt.zero, 'size');
    expect(isHex64(up.single.hash), 'a hash for the empty file');
  });

  await s.run();
}
