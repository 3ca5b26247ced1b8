// The value types of the API. The flutter_rust_bridge package generates them with
// freezed (sealed classes with `==`, `hashCode`, `toString`, `copyWith`, `toJson` /
// `fromJson` and, for the types its library exports whole, the `map`/`when` pattern
// methods); freezed is not available here, so the same members are written by hand,
// with the same names, shapes and JSON (BigInts as decimal strings). Differences are
// listed in README.md.

/// Marks a `copyWith` argument that was not given (so `null` can be given to clear a
/// nullable field, as with freezed).
const Object _unset = _Unset();

final class _Unset {
  const _Unset();
}

BigInt _bigInt(Object? json) => BigInt.parse(json as String);

/// A file to download: its Xet hash and size, where to write it, and optionally a
/// byte range.
final class DartXetDownloadInfo {
  /// Where the file (or the range's bytes) is written, atomically (temp file + rename).
  final String destinationPath;

  /// The file's Xet hash, 64 hex characters.
  final String hash;

  /// The whole file's size in bytes (checked for whole-file downloads before anything
  /// is written).
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

  /// The same as the constructor (the flutter_rust_bridge package builds the value
  /// in Rust, hence the future).
  static Future<DartXetDownloadInfo> newInstance({
    required String destinationPath,
    required String hash,
    required BigInt fileSize,
    (BigInt, BigInt)? range,
  }) async =>
      DartXetDownloadInfo(destinationPath: destinationPath, hash: hash, fileSize: fileSize, range: range);

  /// Reads what [toJson] writes (and the flutter_rust_bridge package's JSON, which
  /// has no `range`).
  factory DartXetDownloadInfo.fromJson(Map<String, dynamic> json) {
    final range = json['range'] as List<Object?>?;
    return DartXetDownloadInfo(
      destinationPath: json['destinationPath'] as String,
      hash: json['hash'] as String,
      fileSize: _bigInt(json['fileSize']),
      range: range == null ? null : (_bigInt(range[0]), _bigInt(range[1])),
    );
  }

  /// `{"destinationPath", "hash", "fileSize": "<decimal>"}`, plus
  /// `"range": ["<start>", "<end>"]` when there is a range.
  Map<String, dynamic> toJson() => <String, dynamic>{
        'destinationPath': destinationPath,
        'hash': hash,
        'fileSize': fileSize.toString(),
        if (range case (final start, final end)) 'range': [start.toString(), end.toString()],
      };

  /// A copy with the given fields replaced (`range: null` removes the range).
  $DartXetDownloadInfoCopyWith<DartXetDownloadInfo> get copyWith => _DartXetDownloadInfoCopyWith(this);

  @override
  bool operator ==(Object other) =>
      identical(this, other) ||
      (other.runtimeType == runtimeType &&
          other is DartXetDownloadInfo &&
          other.destinationPath == destinationPath &&
          other.hash == hash &&
          other.fileSize == fileSize &&
          other.range == range);

  @override
  int get hashCode => Object.hash(runtimeType, destinationPath, hash, fileSize, range);

  @override
  String toString() => 'DartXetDownloadInfo(destinationPath: $destinationPath, hash: $hash, fileSize: $fileSize'
      '${range == null ? '' : ', range: $range'})';
}

/// The `copyWith` of [DartXetDownloadInfo].
abstract interface class $DartXetDownloadInfoCopyWith<$Res> {
  /// A copy with the given fields replaced.
  $Res call({String destinationPath, String hash, BigInt fileSize, (BigInt, BigInt)? range});
}

final class _DartXetDownloadInfoCopyWith implements $DartXetDownloadInfoCopyWith<DartXetDownloadInfo> {
  final DartXetDownloadInfo _self;
  const _DartXetDownloadInfoCopyWith(this._self);

  @override
  DartXetDownloadInfo call({
    Object? destinationPath = _unset,
    Object? hash = _unset,
    Object? fileSize = _unset,
    Object? range = _unset,
  }) =>
      DartXetDownloadInfo(
        destinationPath: identical(destinationPath, _unset) ? _self.destinationPath : destinationPath as String,
        hash: identical(hash, _unset) ? _self.hash : hash as String,
        fileSize: identical(fileSize, _unset) ? _self.fileSize : fileSize as BigInt,
        range: identical(range, _unset) ? _self.range : range as (BigInt, BigInt)?,
      );
}

/// One uploaded file or buffer.
final class DartXetUploadInfo {
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

  /// The same as the constructor (the flutter_rust_bridge package builds the value
  /// in Rust, hence the future).
  static Future<DartXetUploadInfo> newInstance({required String hash, required BigInt fileSize, String? sha256}) async =>
      DartXetUploadInfo(hash: hash, fileSize: fileSize, sha256: sha256);

  /// Reads what [toJson] writes (and the flutter_rust_bridge package's JSON, which
  /// has no `sha256`).
  factory DartXetUploadInfo.fromJson(Map<String, dynamic> json) => DartXetUploadInfo(
        hash: json['hash'] as String,
        fileSize: _bigInt(json['fileSize']),
        sha256: json['sha256'] as String?,
      );

  /// `{"hash", "fileSize": "<decimal>"}`, plus `"sha256"` when known.
  Map<String, dynamic> toJson() => <String, dynamic>{
        'hash': hash,
        'fileSize': fileSize.toString(),
        if (sha256 case final sha?) 'sha256': sha,
      };

  /// A copy with the given fields replaced (`sha256: null` removes it).
  $DartXetUploadInfoCopyWith<DartXetUploadInfo> get copyWith => _DartXetUploadInfoCopyWith(this);

  @override
  bool operator ==(Object other) =>
      identical(this, other) ||
      (other.runtimeType == runtimeType &&
          other is DartXetUploadInfo &&
          other.hash == hash &&
          other.fileSize == fileSize &&
          other.sha256 == sha256);

  @override
  int get hashCode => Object.hash(runtimeType, hash, fileSize, sha256);

  @override
  String toString() => 'DartXetUploadInfo(hash: $hash, fileSize: $fileSize${sha256 == null ? '' : ', sha256: $sha256'})';
}

/// The `copyWith` of [DartXetUploadInfo].
abstract interface class $DartXetUploadInfoCopyWith<$Res> {
  /// A copy with the given fields replaced.
  $Res call({String hash, BigInt fileSize, String? sha256});
}

final class _DartXetUploadInfoCopyWith implements $DartXetUploadInfoCopyWith<DartXetUploadInfo> {
  final DartXetUploadInfo _self;
  const _DartXetUploadInfoCopyWith(this._self);

  @override
  DartXetUploadInfo call({Object? hash = _unset, Object? fileSize = _unset, Object? sha256 = _unset}) =>
      DartXetUploadInfo(
        hash: identical(hash, _unset) ? _self.hash : hash as String,
        fileSize: identical(fileSize, _unset) ? _self.fileSize : fileSize as BigInt,
        sha256: identical(sha256, _unset) ? _self.sha256 : sha256 as String?,
      );
}

/// A CAS access token and when it expires.
final class DartTokenInfo {
  /// The bearer token for the CAS.
  final String token;

  /// Expiry in Unix seconds.
  final BigInt expiration;

  /// A token valid until [expiration] (Unix seconds).
  const DartTokenInfo({required this.token, required this.expiration});

  /// Reads what [toJson] writes.
  factory DartTokenInfo.fromJson(Map<String, dynamic> json) =>
      DartTokenInfo(token: json['token'] as String, expiration: _bigInt(json['expiration']));

  /// `{"token", "expiration": "<decimal>"}`.
  Map<String, dynamic> toJson() => <String, dynamic>{'token': token, 'expiration': expiration.toString()};

  /// A copy with the given fields replaced.
  $DartTokenInfoCopyWith<DartTokenInfo> get copyWith => _DartTokenInfoCopyWith(this);

  @override
  bool operator ==(Object other) =>
      identical(this, other) ||
      (other.runtimeType == runtimeType &&
          other is DartTokenInfo &&
          other.token == token &&
          other.expiration == expiration);

  @override
  int get hashCode => Object.hash(runtimeType, token, expiration);

  /// The token itself is left out (it is a credential; freezed's would print it).
  @override
  String toString() => 'DartTokenInfo(token: <redacted>, expiration: $expiration)';
}

/// The `copyWith` of [DartTokenInfo].
abstract interface class $DartTokenInfoCopyWith<$Res> {
  /// A copy with the given fields replaced.
  $Res call({String token, BigInt expiration});
}

final class _DartTokenInfoCopyWith implements $DartTokenInfoCopyWith<DartTokenInfo> {
  final DartTokenInfo _self;
  const _DartTokenInfoCopyWith(this._self);

  @override
  DartTokenInfo call({Object? token = _unset, Object? expiration = _unset}) => DartTokenInfo(
        token: identical(token, _unset) ? _self.token : token as String,
        expiration: identical(expiration, _unset) ? _self.expiration : expiration as BigInt,
      );
}

/// freezed's pattern methods of [DartTokenInfo] (a single case: `map` gets the value,
/// `when` its fields).
extension DartTokenInfoPatterns on DartTokenInfo {
  /// [$default] of this value, or [orElse] if [$default] is null.
  TResult maybeMap<TResult extends Object?>(TResult Function(DartTokenInfo value)? $default,
          {required TResult Function() orElse}) =>
      $default != null ? $default(this) : orElse();

  /// [$default] of this value.
  TResult map<TResult extends Object?>(TResult Function(DartTokenInfo value) $default) => $default(this);

  /// [$default] of this value, or null if [$default] is null.
  TResult? mapOrNull<TResult extends Object?>(TResult? Function(DartTokenInfo value)? $default) => $default?.call(this);

  /// [$default] of the fields, or [orElse] if [$default] is null.
  TResult maybeWhen<TResult extends Object?>(TResult Function(String token, BigInt expiration)? $default,
          {required TResult Function() orElse}) =>
      $default != null ? $default(token, expiration) : orElse();

  /// [$default] of the fields.
  TResult when<TResult extends Object?>(TResult Function(String token, BigInt expiration) $default) =>
      $default(token, expiration);

  /// [$default] of the fields, or null if [$default] is null.
  TResult? whenOrNull<TResult extends Object?>(TResult? Function(String token, BigInt expiration)? $default) =>
      $default?.call(token, expiration);
}

/// Progress of one file or buffer of an operation since the previous update.
final class DartItemProgressUpdate {
  /// The file path (uploads of files, downloads: the destination path) or, for
  /// [uploadBytes], the buffer's index as a string (`"0"`, `"1"`, ...).
  final String itemName;

  /// The item's size in bytes (0 while unknown).
  final BigInt totalBytes;

  /// Bytes of this item processed so far.
  final BigInt bytesCompleted;

  /// Bytes of this item processed since the previous update that listed it.
  final BigInt bytesCompletionIncrement;

  /// An item update.
  const DartItemProgressUpdate({
    required this.itemName,
    required this.totalBytes,
    required this.bytesCompleted,
    required this.bytesCompletionIncrement,
  });

  /// Reads what [toJson] writes.
  factory DartItemProgressUpdate.fromJson(Map<String, dynamic> json) => DartItemProgressUpdate(
        itemName: json['itemName'] as String,
        totalBytes: _bigInt(json['totalBytes']),
        bytesCompleted: _bigInt(json['bytesCompleted']),
        bytesCompletionIncrement: _bigInt(json['bytesCompletionIncrement']),
      );

  /// The fields by name, BigInts as decimal strings.
  Map<String, dynamic> toJson() => <String, dynamic>{
        'itemName': itemName,
        'totalBytes': totalBytes.toString(),
        'bytesCompleted': bytesCompleted.toString(),
        'bytesCompletionIncrement': bytesCompletionIncrement.toString(),
      };

  /// A copy with the given fields replaced.
  $DartItemProgressUpdateCopyWith<DartItemProgressUpdate> get copyWith => _DartItemProgressUpdateCopyWith(this);

  @override
  bool operator ==(Object other) =>
      identical(this, other) ||
      (other.runtimeType == runtimeType &&
          other is DartItemProgressUpdate &&
          other.itemName == itemName &&
          other.totalBytes == totalBytes &&
          other.bytesCompleted == bytesCompleted &&
          other.bytesCompletionIncrement == bytesCompletionIncrement);

  @override
  int get hashCode => Object.hash(runtimeType, itemName, totalBytes, bytesCompleted, bytesCompletionIncrement);

  @override
  String toString() => 'DartItemProgressUpdate(itemName: $itemName, totalBytes: $totalBytes, '
      'bytesCompleted: $bytesCompleted, bytesCompletionIncrement: $bytesCompletionIncrement)';
}

/// The `copyWith` of [DartItemProgressUpdate].
abstract interface class $DartItemProgressUpdateCopyWith<$Res> {
  /// A copy with the given fields replaced.
  $Res call({String itemName, BigInt totalBytes, BigInt bytesCompleted, BigInt bytesCompletionIncrement});
}

final class _DartItemProgressUpdateCopyWith implements $DartItemProgressUpdateCopyWith<DartItemProgressUpdate> {
  final DartItemProgressUpdate _self;
  const _DartItemProgressUpdateCopyWith(this._self);

  @override
  DartItemProgressUpdate call({
    Object? itemName = _unset,
    Object? totalBytes = _unset,
    Object? bytesCompleted = _unset,
    Object? bytesCompletionIncrement = _unset,
  }) =>
      DartItemProgressUpdate(
        itemName: identical(itemName, _unset) ? _self.itemName : itemName as String,
        totalBytes: identical(totalBytes, _unset) ? _self.totalBytes : totalBytes as BigInt,
        bytesCompleted: identical(bytesCompleted, _unset) ? _self.bytesCompleted : bytesCompleted as BigInt,
        bytesCompletionIncrement: identical(bytesCompletionIncrement, _unset)
            ? _self.bytesCompletionIncrement
            : bytesCompletionIncrement as BigInt,
      );
}

/// freezed's pattern methods of [DartItemProgressUpdate] (a single case: `map` gets
/// the value, `when` its fields).
extension DartItemProgressUpdatePatterns on DartItemProgressUpdate {
  /// [$default] of this value, or [orElse] if [$default] is null.
  TResult maybeMap<TResult extends Object?>(TResult Function(DartItemProgressUpdate value)? $default,
          {required TResult Function() orElse}) =>
      $default != null ? $default(this) : orElse();

  /// [$default] of this value.
  TResult map<TResult extends Object?>(TResult Function(DartItemProgressUpdate value) $default) => $default(this);

  /// [$default] of this value, or null if [$default] is null.
  TResult? mapOrNull<TResult extends Object?>(TResult? Function(DartItemProgressUpdate value)? $default) =>
      $default?.call(this);

  /// [$default] of the fields, or [orElse] if [$default] is null.
  TResult maybeWhen<TResult extends Object?>(
          TResult Function(String itemName, BigInt totalBytes, BigInt bytesCompleted, BigInt bytesCompletionIncrement)?
              $default,
          {required TResult Function() orElse}) =>
      $default != null ? $default(itemName, totalBytes, bytesCompleted, bytesCompletionIncrement) : orElse();

  /// [$default] of the fields.
  TResult when<TResult extends Object?>(
          TResult Function(String itemName, BigInt totalBytes, BigInt bytesCompleted, BigInt bytesCompletionIncrement)
              $default) =>
      $default(itemName, totalBytes, bytesCompleted, bytesCompletionIncrement);

  /// [$default] of the fields, or null if [$default] is null.
  TResult? whenOrNull<TResult extends Object?>(
          TResult? Function(String itemName, BigInt totalBytes, BigInt bytesCompleted, BigInt bytesCompletionIncrement)?
              $default) =>
      $default?.call(itemName, totalBytes, bytesCompleted, bytesCompletionIncrement);
}

/// Progress of a whole operation.
///
/// "Bytes" count file contents processed (hashed and deduplicated on upload, written
/// on download); "transfer bytes" count what went over the network. The native
/// library reports no total for the network side, so [totalTransferBytes] equals
/// [totalTransferBytesCompleted] (it grows as the transfer proceeds).
final class DartTotalProgressUpdate {
  /// Total bytes of the operation (0 while unknown).
  final BigInt totalBytes;

  /// Change of [totalBytes] since the previous update.
  final BigInt totalBytesIncrement;

  /// Bytes processed so far.
  final BigInt totalBytesCompleted;

  /// Bytes processed since the previous update.
  final BigInt totalBytesCompletionIncrement;

  /// Average bytes per second processed since the operation started (null before any
  /// time has passed).
  final double? totalBytesCompletionRate;

  /// Bytes expected over the network so far (see the class documentation).
  final BigInt totalTransferBytes;

  /// Change of [totalTransferBytes] since the previous update.
  final BigInt totalTransferBytesIncrement;

  /// Bytes sent (uploads) or received (downloads) over the network so far.
  final BigInt totalTransferBytesCompleted;

  /// Change of [totalTransferBytesCompleted] since the previous update.
  final BigInt totalTransferBytesCompletionIncrement;

  /// Average network bytes per second since the operation started (null before any
  /// time has passed).
  final double? totalTransferBytesCompletionRate;

  /// A total update.
  const DartTotalProgressUpdate({
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

  /// Reads what [toJson] writes.
  factory DartTotalProgressUpdate.fromJson(Map<String, dynamic> json) => DartTotalProgressUpdate(
        totalBytes: _bigInt(json['totalBytes']),
        totalBytesIncrement: _bigInt(json['totalBytesIncrement']),
        totalBytesCompleted: _bigInt(json['totalBytesCompleted']),
        totalBytesCompletionIncrement: _bigInt(json['totalBytesCompletionIncrement']),
        totalBytesCompletionRate: (json['totalBytesCompletionRate'] as num?)?.toDouble(),
        totalTransferBytes: _bigInt(json['totalTransferBytes']),
        totalTransferBytesIncrement: _bigInt(json['totalTransferBytesIncrement']),
        totalTransferBytesCompleted: _bigInt(json['totalTransferBytesCompleted']),
        totalTransferBytesCompletionIncrement: _bigInt(json['totalTransferBytesCompletionIncrement']),
        totalTransferBytesCompletionRate: (json['totalTransferBytesCompletionRate'] as num?)?.toDouble(),
      );

  /// The fields by name, BigInts as decimal strings, rates as numbers or null.
  Map<String, dynamic> toJson() => <String, dynamic>{
        'totalBytes': totalBytes.toString(),
        'totalBytesIncrement': totalBytesIncrement.toString(),
        'totalBytesCompleted': totalBytesCompleted.toString(),
        'totalBytesCompletionIncrement': totalBytesCompletionIncrement.toString(),
        'totalBytesCompletionRate': totalBytesCompletionRate,
        'totalTransferBytes': totalTransferBytes.toString(),
        'totalTransferBytesIncrement': totalTransferBytesIncrement.toString(),
        'totalTransferBytesCompleted': totalTransferBytesCompleted.toString(),
        'totalTransferBytesCompletionIncrement': totalTransferBytesCompletionIncrement.toString(),
        'totalTransferBytesCompletionRate': totalTransferBytesCompletionRate,
      };

  /// A copy with the given fields replaced (a rate given as `null` is cleared).
  $DartTotalProgressUpdateCopyWith<DartTotalProgressUpdate> get copyWith => _DartTotalProgressUpdateCopyWith(this);

  @override
  bool operator ==(Object other) =>
      identical(this, other) ||
      (other.runtimeType == runtimeType &&
          other is DartTotalProgressUpdate &&
          other.totalBytes == totalBytes &&
          other.totalBytesIncrement == totalBytesIncrement &&
          other.totalBytesCompleted == totalBytesCompleted &&
          other.totalBytesCompletionIncrement == totalBytesCompletionIncrement &&
          other.totalBytesCompletionRate == totalBytesCompletionRate &&
          other.totalTransferBytes == totalTransferBytes &&
          other.totalTransferBytesIncrement == totalTransferBytesIncrement &&
          other.totalTransferBytesCompleted == totalTransferBytesCompleted &&
          other.totalTransferBytesCompletionIncrement == totalTransferBytesCompletionIncrement &&
          other.totalTransferBytesCompletionRate == totalTransferBytesCompletionRate);

  @override
  int get hashCode => Object.hash(
      runtimeType,
      totalBytes,
      totalBytesIncrement,
      totalBytesCompleted,
      totalBytesCompletionIncrement,
      totalBytesCompletionRate,
      totalTransferBytes,
      totalTransferBytesIncrement,
      totalTransferBytesCompleted,
      totalTransferBytesCompletionIncrement,
      totalTransferBytesCompletionRate);

  @override
  String toString() => 'DartTotalProgressUpdate(totalBytes: $totalBytes, totalBytesIncrement: $totalBytesIncrement, '
      'totalBytesCompleted: $totalBytesCompleted, totalBytesCompletionIncrement: $totalBytesCompletionIncrement, '
      'totalBytesCompletionRate: $totalBytesCompletionRate, totalTransferBytes: $totalTransferBytes, '
      'totalTransferBytesIncrement: $totalTransferBytesIncrement, '
      'totalTransferBytesCompleted: $totalTransferBytesCompleted, '
      'totalTransferBytesCompletionIncrement: $totalTransferBytesCompletionIncrement, '
      'totalTransferBytesCompletionRate: $totalTransferBytesCompletionRate)';
}

/// The `copyWith` of [DartTotalProgressUpdate].
abstract interface class $DartTotalProgressUpdateCopyWith<$Res> {
  /// A copy with the given fields replaced.
  $Res call({
    BigInt totalBytes,
    BigInt totalBytesIncrement,
    BigInt totalBytesCompleted,
    BigInt totalBytesCompletionIncrement,
    double? totalBytesCompletionRate,
    BigInt totalTransferBytes,
    BigInt totalTransferBytesIncrement,
    BigInt totalTransferBytesCompleted,
    BigInt totalTransferBytesCompletionIncrement,
    double? totalTransferBytesCompletionRate,
  });
}

final class _DartTotalProgressUpdateCopyWith implements $DartTotalProgressUpdateCopyWith<DartTotalProgressUpdate> {
  final DartTotalProgressUpdate _self;
  const _DartTotalProgressUpdateCopyWith(this._self);

  @override
  DartTotalProgressUpdate call({
    Object? totalBytes = _unset,
    Object? totalBytesIncrement = _unset,
    Object? totalBytesCompleted = _unset,
    Object? totalBytesCompletionIncrement = _unset,
    Object? totalBytesCompletionRate = _unset,
    Object? totalTransferBytes = _unset,
    Object? totalTransferBytesIncrement = _unset,
    Object? totalTransferBytesCompleted = _unset,
    Object? totalTransferBytesCompletionIncrement = _unset,
    Object? totalTransferBytesCompletionRate = _unset,
  }) {
    T pick<T>(Object? given, T current) => identical(given, _unset) ? current : given as T;
    return DartTotalProgressUpdate(
      totalBytes: pick(totalBytes, _self.totalBytes),
      totalBytesIncrement: pick(totalBytesIncrement, _self.totalBytesIncrement),
      totalBytesCompleted: pick(totalBytesCompleted, _self.totalBytesCompleted),
      totalBytesCompletionIncrement: pick(totalBytesCompletionIncrement, _self.totalBytesCompletionIncrement),
      totalBytesCompletionRate: pick(totalBytesCompletionRate, _self.totalBytesCompletionRate),
      totalTransferBytes: pick(totalTransferBytes, _self.totalTransferBytes),
      totalTransferBytesIncrement: pick(totalTransferBytesIncrement, _self.totalTransferBytesIncrement),
      totalTransferBytesCompleted: pick(totalTransferBytesCompleted, _self.totalTransferBytesCompleted),
      totalTransferBytesCompletionIncrement:
          pick(totalTransferBytesCompletionIncrement, _self.totalTransferBytesCompletionIncrement),
      totalTransferBytesCompletionRate: pick(totalTransferBytesCompletionRate, _self.totalTransferBytesCompletionRate),
    );
  }
}

/// freezed's pattern methods of [DartTotalProgressUpdate] (a single case: `map` gets
/// the value, `when` its fields in declaration order).
extension DartTotalProgressUpdatePatterns on DartTotalProgressUpdate {
  /// [$default] of this value, or [orElse] if [$default] is null.
  TResult maybeMap<TResult extends Object?>(TResult Function(DartTotalProgressUpdate value)? $default,
          {required TResult Function() orElse}) =>
      $default != null ? $default(this) : orElse();

  /// [$default] of this value.
  TResult map<TResult extends Object?>(TResult Function(DartTotalProgressUpdate value) $default) => $default(this);

  /// [$default] of this value, or null if [$default] is null.
  TResult? mapOrNull<TResult extends Object?>(TResult? Function(DartTotalProgressUpdate value)? $default) =>
      $default?.call(this);

  /// [$default] of the fields, or [orElse] if [$default] is null.
  TResult maybeWhen<TResult extends Object?>(
          TResult Function(
                  BigInt totalBytes,
                  BigInt totalBytesIncrement,
                  BigInt totalBytesCompleted,
                  BigInt totalBytesCompletionIncrement,
                  double? totalBytesCompletionRate,
                  BigInt totalTransferBytes,
                  BigInt totalTransferBytesIncrement,
                  BigInt totalTransferBytesCompleted,
                  BigInt totalTransferBytesCompletionIncrement,
                  double? totalTransferBytesCompletionRate)?
              $default,
          {required TResult Function() orElse}) =>
      $default != null ? when($default) : orElse();

  /// [$default] of the fields.
  TResult when<TResult extends Object?>(
          TResult Function(
                  BigInt totalBytes,
                  BigInt totalBytesIncrement,
                  BigInt totalBytesCompleted,
                  BigInt totalBytesCompletionIncrement,
                  double? totalBytesCompletionRate,
                  BigInt totalTransferBytes,
                  BigInt totalTransferBytesIncrement,
                  BigInt totalTransferBytesCompleted,
                  BigInt totalTransferBytesCompletionIncrement,
                  double? totalTransferBytesCompletionRate)
              $default) =>
      $default(
          totalBytes,
          totalBytesIncrement,
          totalBytesCompleted,
          totalBytesCompletionIncrement,
          totalBytesCompletionRate,
          totalTransferBytes,
          totalTransferBytesIncrement,
          totalTransferBytesCompleted,
          totalTransferBytesCompletionIncrement,
          totalTransferBytesCompletionRate);

  /// [$default] of the fields, or null if [$default] is null.
  TResult? whenOrNull<TResult extends Object?>(
          TResult? Function(
                  BigInt totalBytes,
                  BigInt totalBytesIncrement,
                  BigInt totalBytesCompleted,
                  BigInt totalBytesCompletionIncrement,
                  double? totalBytesCompletionRate,
                  BigInt totalTransferBytes,
                  BigInt totalTransferBytesIncrement,
                  BigInt totalTransferBytesCompleted,
                  BigInt totalTransferBytesCompletionIncrement,
                  double? totalTransferBytesCompletionRate)?
              $default) =>
      $default == null ? null : when($default);
}
