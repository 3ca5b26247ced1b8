// The value types: what the flutter_rust_bridge package's freezed classes offer
// (==/hashCode, copyWith, toJson/fromJson with its JSON, toString, newInstance, the
// map/when pattern methods), written by hand here. No server needed.
import 'dart:convert';

import 'package:hf_xet/hf_xet.dart';

import 'harness.dart';

/// [json] through JSON text and back with [fromJson].
T roundTrip<T>(Map<String, dynamic> json, T Function(Map<String, dynamic>) fromJson) =>
    fromJson(jsonDecode(jsonEncode(json)) as Map<String, dynamic>);

void expectNotEquals(Object a, Object b, String what) {
  if (a == b) throw TestFailure('$what: expected $a != $b');
}

Future<void> main() async {
  final s = Suite();
  final hash = 'ab' * 32;
  final big = BigInt.parse('18446744073709551615'); // beyond an int: kept exactly

  s.test('DartXetDownloadInfo: ==, hashCode, copyWith, JSON, toString, newInstance', () async {
    final a = DartXetDownloadInfo(destinationPath: '/tmp/a', hash: hash, fileSize: big);
    final same = DartXetDownloadInfo(destinationPath: '/tmp/a', hash: hash, fileSize: big);
    expectEquals(a, same, 'equal values');
    expectEquals(a.hashCode, same.hashCode, 'equal hash codes');
    expectNotEquals(a, a.copyWith(destinationPath: '/tmp/b'), 'another path');
    expectNotEquals(a, a.copyWith(fileSize: BigInt.one), 'another size');
    final ranged = a.copyWith(range: (BigInt.one, BigInt.two));
    expectNotEquals(a, ranged, 'a range');
    expectEquals(ranged.range, (BigInt.one, BigInt.two), 'copyWith sets the range');
    expectEquals(ranged.copyWith(hash: 'cd' * 32).range, ranged.range, 'fields not given are kept');
    expectEquals(ranged.copyWith(range: null), a, 'copyWith(range: null) clears it');
    expectEquals(await DartXetDownloadInfo.newInstance(destinationPath: '/tmp/a', hash: hash, fileSize: big), a,
        'newInstance');
    // The flutter_rust_bridge package's JSON, exactly (no range key without a range).
    expectEquals(jsonEncode(a.toJson()),
        '{"destinationPath":"/tmp/a","hash":"$hash","fileSize":"18446744073709551615"}', 'JSON');
    expectEquals(roundTrip(a.toJson(), DartXetDownloadInfo.fromJson), a, 'round trip');
    expectEquals(jsonEncode(ranged.toJson()['range']), '["1","2"]', 'the range as decimal strings');
    expectEquals(roundTrip(ranged.toJson(), DartXetDownloadInfo.fromJson), ranged, 'round trip, range');
    expectEquals(a.toString(), 'DartXetDownloadInfo(destinationPath: /tmp/a, hash: $hash, fileSize: $big)', 'toString');
  });

  s.test('DartXetUploadInfo: ==, hashCode, copyWith, JSON, toString, newInstance', () async {
    final u = DartXetUploadInfo(hash: hash, fileSize: BigInt.from(12));
    expectEquals(u, DartXetUploadInfo(hash: hash, fileSize: BigInt.from(12)), 'equal values');
    expectEquals(u.hashCode, DartXetUploadInfo(hash: hash, fileSize: BigInt.from(12)).hashCode, 'hash codes');
    final withSha = u.copyWith(sha256: 'ef' * 32);
    expectNotEquals(u, withSha, 'a SHA-256');
    expectEquals(withSha.copyWith(fileSize: BigInt.two).sha256, 'ef' * 32, 'kept');
    expectEquals(withSha.copyWith(sha256: null), u, 'cleared');
    expectEquals(await DartXetUploadInfo.newInstance(hash: hash, fileSize: BigInt.from(12)), u, 'newInstance');
    expectEquals(jsonEncode(u.toJson()), '{"hash":"$hash","fileSize":"12"}', 'JSON');
    expectEquals(roundTrip(u.toJson(), DartXetUploadInfo.fromJson), u, 'round trip');
    expectEquals(roundTrip(withSha.toJson(), DartXetUploadInfo.fromJson), withSha, 'round trip, sha256');
    expectEquals(u.toString(), 'DartXetUploadInfo(hash: $hash, fileSize: 12)', 'toString');
  });

  s.test('DartTokenInfo: ==, hashCode, copyWith, JSON, patterns; toString hides the token', () {
    final t = DartTokenInfo(token: 'secret-token', expiration: BigInt.from(1700000000));
    expectEquals(t, DartTokenInfo(token: 'secret-token', expiration: BigInt.from(1700000000)), 'equal values');
    expectEquals(t.hashCode, t.copyWith().hashCode, 'copyWith() is an equal copy');
    expectNotEquals(t, t.copyWith(token: 'other'), 'another token');
    expectEquals(t.copyWith(expiration: BigInt.one).token, 'secret-token', 'kept');
    expectEquals(jsonEncode(t.toJson()), '{"token":"secret-token","expiration":"1700000000"}', 'JSON');
    expectEquals(roundTrip(t.toJson(), DartTokenInfo.fromJson), t, 'round trip');
    expect(!t.toString().contains('secret-token'), 'no token in toString: $t');
    expectEquals(t.when((token, expiration) => '$token@$expiration'), 'secret-token@1700000000', 'when');
    expectEquals(t.map((v) => v.token), 'secret-token', 'map');
    expectEquals(t.maybeWhen(null, orElse: () => 'else'), 'else', 'maybeWhen orElse');
    expectEquals(t.maybeMap((v) => 1, orElse: () => 2), 1, 'maybeMap');
    expectEquals(t.whenOrNull<int>(null), null, 'whenOrNull');
    expectEquals(t.mapOrNull((v) => v.expiration), BigInt.from(1700000000), 'mapOrNull');
  });

  s.test('DartItemProgressUpdate: ==, hashCode, copyWith, JSON, toString, patterns', () {
    final i = DartItemProgressUpdate(
        itemName: 'a.bin', totalBytes: big, bytesCompleted: BigInt.from(5), bytesCompletionIncrement: BigInt.two);
    final same = i.copyWith();
    expectEquals(i, same, 'equal copy');
    expectEquals(i.hashCode, same.hashCode, 'hash codes');
    final moved = i.copyWith(bytesCompleted: BigInt.from(7));
    expectNotEquals(i, moved, 'other progress');
    expectEquals(moved.itemName, 'a.bin', 'kept');
    expectEquals(jsonEncode(i.toJson()),
        '{"itemName":"a.bin","totalBytes":"$big","bytesCompleted":"5","bytesCompletionIncrement":"2"}', 'JSON');
    expectEquals(roundTrip(i.toJson(), DartItemProgressUpdate.fromJson), i, 'round trip');
    expectEquals(i.toString(),
        'DartItemProgressUpdate(itemName: a.bin, totalBytes: $big, bytesCompleted: 5, bytesCompletionIncrement: 2)',
        'toString');
    expectEquals(i.when((name, t, done, inc) => '$name $done/$t +$inc'), 'a.bin 5/$big +2', 'when');
    expectEquals(i.whenOrNull((name, t, done, inc) => done), BigInt.from(5), 'whenOrNull');
  });

  s.test('DartTotalProgressUpdate: ==, hashCode, copyWith (rates cleared by null), JSON, patterns', () {
    final t = DartTotalProgressUpdate(
      totalBytes: BigInt.from(100),
      totalBytesIncrement: BigInt.from(100),
      totalBytesCompleted: BigInt.from(40),
      totalBytesCompletionIncrement: BigInt.from(10),
      totalBytesCompletionRate: 2.5,
      totalTransferBytes: big,
      totalTransferBytesIncrement: BigInt.one,
      totalTransferBytesCompleted: big,
      totalTransferBytesCompletionIncrement: BigInt.one,
      totalTransferBytesCompletionRate: null,
    );
    expectEquals(t, t.copyWith(), 'equal copy');
    expectEquals(t.hashCode, t.copyWith().hashCode, 'hash codes');
    expectNotEquals(t, t.copyWith(totalBytesCompleted: BigInt.from(41)), 'other progress');
    expectEquals(t.copyWith(totalBytesCompletionRate: null).totalBytesCompletionRate, null, 'rate cleared');
    expectEquals(t.copyWith(totalTransferBytesCompletionRate: 1.0).totalBytesCompletionRate, 2.5, 'rate kept');
    final json = t.toJson();
    expectEquals(json['totalBytesCompletionRate'], 2.5, 'a rate is a number');
    expectEquals(json['totalTransferBytesCompletionRate'], null, 'an unknown rate is null');
    expectEquals(json['totalTransferBytes'], '$big', 'BigInts as strings');
    expectEquals(json.length, 10, 'every field');
    expectEquals(roundTrip(t.toJson(), DartTotalProgressUpdate.fromJson), t, 'round trip');
    expect(t.toString().startsWith('DartTotalProgressUpdate(totalBytes: 100, totalBytesIncrement: 100, '),
        'freezed-style toString: $t');
    expectEquals(
        t.when((tb, tbi, tbc, tbci, rate, ttb, ttbi, ttbc, ttbci, trate) => '$tbc/$tb $rate $trate'), '40/100 2.5 null',
        'when');
    expectEquals(t.maybeMap(null, orElse: () => 'else'), 'else', 'maybeMap orElse');
  });

  await s.run();
}
