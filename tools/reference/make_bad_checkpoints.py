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
