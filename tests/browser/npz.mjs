// Reads the .npz that `attnviz export` writes (an uncompressed zip of .npy
// files, src/viz/npz.cpp) so that browser tests can check printed numbers
// against the exact float32 values. Only what that writer produces: stored
// entries, sizes in the local headers, little-endian dtypes.
import fs from "node:fs";

const DTYPES = { "<f4": Float32Array, "<i8": BigInt64Array, "<f8": Float64Array, "<i4": Int32Array };

// Map name -> { descr, shape, data } (data: a typed array, or strings for "<U..").
export function readNpz(file) {
  const bytes = fs.readFileSync(file);
  const arrays = new Map();
  let at = 0;
  while (at + 30 <= bytes.length && bytes.readUInt32LE(at) === 0x04034b50) {
    const method = bytes.readUInt16LE(at + 8), size = bytes.readUInt32LE(at + 18);
    const nameLength = bytes.readUInt16LE(at + 26), extraLength = bytes.readUInt16LE(at + 28);
    if (method !== 0) throw new Error(file + ": entry at byte " + at + " is compressed (method " + method + ")");
    if (size === 0xffffffff) throw new Error(file + ": zip64 entries are not read here");
    const name = bytes.toString("utf8", at + 30, at + 30 + nameLength).replace(/\.npy$/, "");
    const start = at + 30 + nameLength + extraLength;
    arrays.set(name, parseNpy(bytes.subarray(start, start + size), file + ":" + name));
    at = start + size;
  }
  if (!arrays.size) throw new Error(file + ": no arrays");
  return arrays;
}

function parseNpy(bytes, where) {
  if (bytes.toString("latin1", 1, 6) !== "NUMPY") throw new Error(where + ": not a .npy array");
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.toString("latin1", 10, 10 + headerLength);
  const descr = header.match(/'descr': '([^']+)'/)[1];
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(",").filter((s) => s.trim() !== "").map(Number);
  const body = bytes.subarray(10 + headerLength);
  const count = shape.reduce((a, b) => a * b, 1);
  if (descr.startsWith("<U")) {
    const width = +descr.slice(2), out = [];
    for (let i = 0; i < count; i++) {
      let text = "";
      for (let c = 0; c < width; c++) {
        const code = body.readUInt32LE((i * width + c) * 4);
        if (code) text += String.fromCodePoint(code);
      }
      out.push(text);
    }
    return { descr, shape, data: out };
  }
  const Type = DTYPES[descr];
  if (!Type) throw new Error(where + ": dtype " + descr + " is not read here");
  const copy = new Uint8Array(count * Type.BYTES_PER_ELEMENT);  // aligned
  copy.set(body.subarray(0, copy.length));
  return { descr, shape, data: new Type(copy.buffer) };
}
