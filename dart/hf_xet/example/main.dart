import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'package:hf_xet/hf_xet.dart';

/// A CAS token from the Hub (or `xet serve`) for a repository, with a Hub token.
Future<DartTokenInfo> casToken(String hub, String hfToken, {bool write = true}) async {
  final client = HttpClient();
  try {
    final kind = write ? 'write' : 'read';
    final req = await client.getUrl(Uri.parse('$hub/api/models/me/my-model/xet-$kind-token/main'));
    req.headers.set(HttpHeaders.authorizationHeader, 'Bearer $hfToken');
    final resp = await req.close();
    final j = jsonDecode(await resp.transform(utf8.decoder).join()) as Map<String, Object?>;
    if (resp.statusCode != 200) throw HttpException('token endpoint: ${resp.statusCode} $j');
    return DartTokenInfo(token: j['accessToken'] as String, expiration: BigInt.from(j['exp'] as int));
  } finally {
    client.close();
  }
}

Future<void> main() async {
  const hub = 'http://127.0.0.1:8080'; // `xet serve`, or https://huggingface.co
  final hfToken = Platform.environment['HF_TOKEN']!;
  const cas = hub; // the `casUrl` of the token response; `xet serve` is its own CAS
  await HfXet.ensureInitialized(throwOnFail: true);

  // Upload: the refresher is called whenever the library needs a (new) CAS token.
  final op = uploadBytesWithProgress(
    fileContents: [Uint8List.fromList(utf8.encode('hello xet'))],
    endpoint: cas,
    tokenRefresher: () => casToken(hub, hfToken),
  );
  op.progress.listen((p) => print('${p.totalBytesCompleted}/${p.totalBytes} bytes'));
  final uploaded = (await op.result).single;
  print('hash ${uploaded.hash}, sha256 ${uploaded.sha256}');

  // Download the whole file and its bytes 0..4, with a token given up front.
  final read = await casToken(hub, hfToken, write: false);
  final cancel = XetCancelToken(); // cancel.cancel() aborts the download
  try {
    final paths = await downloadFiles(
      files: [
        DartXetDownloadInfo(destinationPath: 'hello.txt', hash: uploaded.hash, fileSize: uploaded.fileSize),
        DartXetDownloadInfo(
            destinationPath: 'hello-0-4.txt',
            hash: uploaded.hash,
            fileSize: uploaded.fileSize,
            range: (BigInt.zero, BigInt.from(4))),
      ],
      endpoint: cas,
      tokenInfo: (read.token, read.expiration),
      progressUpdater: (file, total, items) => print('$file: ${total.totalBytesCompleted}'),
      cancelToken: cancel,
    );
    print('wrote $paths');
  } on XetNotFoundException catch (e) {
    print('no such file on the server: ${e.message}');
  } on XetException catch (e) {
    print('failed (${e.codeName}): ${e.message}');
  }
}
