/// A file to download: its Xet hash and size, where to write it, and optionally a
/// byte range.
class DartXetDownloadInfo {
  /// Where the file (or the range's bytes) is written, atomically (temp file + rename).
  final String destinationPath;

  /// The file's Xet hash, 64 hex characters.
  final String hash;

  /// The whole file's size in bytes.
  final BigInt fileSize;

  /// An inclusive byte range `(start, end)` of the file to write instead of the whole
  /// file; `null` for the whole file. Not in the flutter_rust_bridge package.
  final (BigInt, BigInt)? range;

  /// A download of [hash] ([fileSize] bytes) to [destinationPath].
  const DartXetDownloadInfo({
    required this.destinationPath,
    required this.hash,
    required this.fileSize,
    this.range,
  });

  @override
  int get hashCode => Object.hash(destinationPath, hash, fileSize, range);

  @override
  bool operator ==(Object other) =>
      other is DartXetDownloadInfo &&
      other.destinationPath == destinationPath &&
      other.hash == hash &&
      other.fileSize == fileSize &&
      other.range == range;

  @override
  String toString() => 'DartXetDownloadInfo($destinationPath, $hash, $fileSize${range == null ? '' : ', range: $range'})';
}

/// One uploaded file or buffer.
class DartXetUploadInfo {
  /// The Xet file hash (64 hex characters): what [DartXetDownloadInfo.hash] takes.
  final String hash;

  /// The size in bytes.
  final BigInt fileSize;

  /// The SHA-256 of the contents (64 hex characters), as the Hub's LFS pointers need;
  /// `null` if the library was asked not to compute it. Not in the flutter_rust_bridge
  /// package.
  final String? sha256;

  /// An upload result.
  const DartXetUploadInfo({required this.hash, required this.fileSize, this.sha256});

  @override
  int get hashCode => Object.hash(hash, fileSize, sha256);

  @override
  bool operator ==(Object other) =>
      other is DartXetUploadInfo && other.hash == hash && other.fileSize == fileSize && other.sha256 == sha256;

  @override
  String toString() => 'DartXetUploadInfo($hash, $fileSize, sha256: $sha256)';
}

/// A CAS access token and when it expires.
class DartTokenInfo {
  /// The bearer token for the CAS.
  final String token;

  /// Expiry in Unix seconds.
  final BigInt expiration;

  /// A token valid until [expiration] (Unix seconds).
  const DartTokenInfo({required this.token, required this.expiration});

  @override
  int get hashCode => Object.hash(token, expiration);

  @override
  bool operator ==(Object other) => other is DartTokenInfo && other.token == token && other.expiration == expiration;

  @override
  String toString() => 'DartTokenInfo(<token>, expires $expiration)';
}

/// Progress of one file or buffer of an operation since the previous update.
class DartItemProgressUpdate {
  /// The file path (uploads of files, downloads: the destination path) or, for
  /// [uploadBytes], the buffer's index as a string (`"0"`, `"1"`, ...).
  String itemName;

  /// The item's size in bytes (0 while unknown).
  BigInt totalBytes;

  /// Bytes of this item processed so far.
  BigInt bytesCompleted;

  /// Bytes of this item processed since the previous update that listed it.
  BigInt bytesCompletionIncrement;

  /// An item update.
  DartItemProgressUpdate({
    required this.itemName,
    required this.totalBytes,
    required this.bytesCompleted,
    required this.bytesCompletionIncrement,
  });

  @override
  String toString() => 'DartItemProgressUpdate($itemName, $bytesCompleted/$totalBytes, +$bytesCompletionIncrement)';
}

/// Progress of a whole operation.
///
/// "Bytes" count file contents processed (hashed and deduplicated on upload, written
/// on download); "transfer bytes" count what went over the network. The native
/// library reports no total for the network side, so [totalTransferBytes] equals
/// [totalTransferBytesCompleted] (it grows as the transfer proceeds).
class DartTotalProgressUpdate {
  /// Total bytes of the operation (0 while unknown).
  BigInt totalBytes;

  /// Change of [totalBytes] since the previous update.
  BigInt totalBytesIncrement;

  /// Bytes processed so far.
  BigInt totalBytesCompleted;

  /// Bytes processed since the previous update.
  BigInt totalBytesCompletionIncrement;

  /// Average bytes per second processed since the operation started (null before any
  /// time has passed).
  double? totalBytesCompletionRate;

  /// Bytes expected over the network so far (see the class documentation).
  BigInt totalTransferBytes;

  /// Change of [totalTransferBytes] since the previous update.
  BigInt totalTransferBytesIncrement;

  /// Bytes sent (uploads) or received (downloads) over the network so far.
  BigInt totalTransferBytesCompleted;

  /// Change of [totalTransferBytesCompleted] since the previous update.
  BigInt totalTransferBytesCompletionIncrement;

  /// Average network bytes per second since the operation started (null before any
  /// time has passed).
  double? totalTransferBytesCompletionRate;

  /// A total update.
  DartTotalProgressUpdate({
    required this.totalBytes,
    required this.totalBytesIncrement,
    required this.totalBytesCompleted,
    required this.totalBytesCompletionIncrement,
    this.totalBytesCompletionRate,
    required this.totalTransferBytes,
    required this.totalTransferBytesIncrement,
    required this.totalTransferBytesCompleted,
    required this.totalTransferBytesCompletionIncrement,
    this.totalTransferBytesCompletionRate,
  });

  @override
  String toString() => 'DartTotalProgressUpdate($totalBytesCompleted/$totalBytes, +$totalBytesCompletionIncrement; '
      'network $totalTransferBytesCompleted)';
}
