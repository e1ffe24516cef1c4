#!/usr/bin/python3
"""Writes hostile or broken PyTorch zip checkpoints for tests/data/model/bad/.

Each is a zip in torch.save's layout (archive/data.pkl, archive/data/<key>)
whose pickle does something a state dict never does. attnviz must refuse each
with an Error naming the global or the entry, and must never execute anything.
"""
import io
import os
import pickle
import sys
import zipfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def write_zip(name, pickle_bytes, entries=None, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(os.path.join(out, name), "w", compression) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
        for entry, data in (entries or {}).items():
            archive.writestr("archive/" + entry, data)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo attnviz-was-pwned > /tmp/attnviz-pwned",))


# os.system via REDUCE (protocol 2, as torch.save writes).
write_zip("os_system.bin", pickle.dumps({"x": Evil()}, protocol=2))
# builtins.eval via the text GLOBAL opcode (protocol 0).
write_zip("builtins_eval.bin", b"cbuiltins\neval\n(S'1+1'\ntR.")
# A state dict whose tensor names a storage that is not in the archive.
write_zip("missing_storage.bin",
          b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
          b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
          b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\n"
          b"OrderedDict\n)RtRu.")
# The same tensor, but its storage holds 2 floats while the tensor needs 4.
write_zip("short_storage.bin",
          b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
          b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
          b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\n"
          b"OrderedDict\n)RtRu.", {"data/0": b"\0" * 8})
# The good one, to show the hand-written pickle above is otherwise valid.
write_zip("good_storage.bin",
          b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
          b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
          b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\n"
          b"OrderedDict\n)RtRu.", {"data/0": b"\x00\x00\x80\x3f" * 4})
# The same, deflated (torch.save never compresses, but zip tools may).
write_zip("good_deflated.bin",
          b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
          b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
          b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\n"
          b"OrderedDict\n)RtRu.", {"data/0": b"\x00\x00\x80\x3f" * 4}, zipfile.ZIP_DEFLATED)


# Legacy files (torch.save before torch 1.6, or _use_new_zipfile_serialization=False):
# pickles one after another, then each storage as an 8-byte element count and its bytes.
def write_legacy(name, state_pickle, keys, storages, sys_info=None):
    with open(os.path.join(out, name), "wb") as f:
        f.write(pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2))  # torch.serialization.MAGIC_NUMBER
        f.write(pickle.dumps(1001, protocol=2))  # PROTOCOL_VERSION
        f.write(sys_info or pickle.dumps(
            {"protocol_version": 1001, "little_endian": True,
             "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
        f.write(state_pickle)
        f.write(pickle.dumps(keys, protocol=2))
        for count, data in storages:
            f.write(count.to_bytes(8, "little") + data)


def legacy_tensor_pickle(numel=b"K\x04"):
    """{"w": a float tensor of 4 elements in storage "0", whose persistent id gives `numel`}"""
    return (b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
            b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
            b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu" + numel + b"NtQK\x00K\x04\x85K\x01\x85\x89"
            b"ccollections\nOrderedDict\n)RtRu.")


ones = b"\x00\x00\x80\x3f" * 4
huge = 1 << 62
huge_long1 = b"\x8a\x08" + huge.to_bytes(8, "little")
# The good one, which torch.load reads as {"w": tensor([1., 1., 1., 1.])}.
write_legacy("legacy_good.bin", legacy_tensor_pickle(), ["0"], [(4, ones)])
# os.system in the state dict pickle, and builtins.eval in the system info pickle.
write_legacy("legacy_os_system.bin", pickle.dumps({"x": Evil()}, protocol=2), [], [])
write_legacy("legacy_sys_info_eval.bin", legacy_tensor_pickle(), ["0"], [(4, ones)],
             sys_info=b"cbuiltins\neval\n(S'1+1'\ntR.")
# A storage whose element count (in the pickle and before its bytes) is far past the file's end.
write_legacy("legacy_huge_storage.bin", legacy_tensor_pickle(huge_long1), ["0"], [(huge, ones)])
# The pickle's element count disagrees with the storage's.
write_legacy("legacy_numel_mismatch.bin", legacy_tensor_pickle(huge_long1), ["0"], [(4, ones)])
# More storage keys than the bytes after them could hold.
write_legacy("legacy_many_storages.bin", legacy_tensor_pickle(), [str(i) for i in range(1000)],
             [(4, ones)])
# The tensor's storage is not in the key list.
write_legacy("legacy_unlisted_storage.bin", legacy_tensor_pickle(), [], [])
# The magic number is not torch's.
with open(os.path.join(out, "legacy_bad_magic.bin"), "wb") as f:
    f.write(pickle.dumps(0x1950a86a20f9469cfc6d, protocol=2) + pickle.dumps(1001, protocol=2))
