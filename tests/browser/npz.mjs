// A reader of numpy's .npz files for the browser tests (node has no numpy):
// the zip's central directory, stored or deflated members, and .npy arrays
// of the dtypes attnviz export writes (<f4, <f8, <i4, <i8, <U...).
// readNpz(path) -> Map name -> { descr, shape, data } where data is a typed
// array (float32, float64, int32, BigInt64 -> Number array) or, for <U, an
// array of strings.
import fs from "node:fs";
import zlib from "node:zlib";

export function readNpz(file) {
  const bytes = fs.readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end of central directory record: signature 0x06054b50, within the last 64 KiB + 22 bytes.
  let end = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 65557); at--) {
    if (view.getUint32(at, true) === 0x06054b50) { end = at; break; }
  }
  if (end < 0) throw new Error(file + ": not a zip file (no end of central directory)");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const arrays = new Map();
  for (let i = 0; i < count; i++) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error(file + ": bad central directory entry " + i);
    const method = view.getUint16(at + 10, true);
    const compressed = view.getUint32(at + 20, true), nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true), commentLength = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const name = bytes.subarray(at + 46, at + 46 + nameLength).toString("utf8");
    if (compressed === 0xffffffff || local === 0xffffffff) throw new Error(file + ": zip64 member " + name + " (not needed by the tests)");
    at += 46 + nameLength + extraLength + commentLength;
    const dataAt = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = bytes.subarray(dataAt, dataAt + compressed);
    const member = method === 0 ? raw : method === 8 ? zlib.inflateRawSync(raw) : null;
    if (!member) throw new Error(file + ": " + name + " uses zip method " + method);
    arrays.set(name.replace(/\.npy$/, ""), readNpy(Buffer.from(member), name));
  }
  return arrays;
}

function readNpy(bytes, name) {
  if (bytes.readUInt8(0) !== 0x93 || bytes.toString("latin1", 1, 6) !== "NUMPY") throw new Error(name + ": not a .npy array");
  const major = bytes.readUInt8(6);
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = bytes.toString("latin1", headerStart, headerStart + headerLength);
  const descr = header.match(/'descr':\s*'([^']+)'/)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(name + ": Fortran order is not read here");
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  const body = bytes.subarray(start);
  // Copied so that typed arrays start on an aligned offset.
  const aligned = (size) => new Uint8Array(body.subarray(0, count * size)).buffer;
  let data;
  if (descr === "<f4") data = new Float32Array(aligned(4));
  else if (descr === "<f8") data = new Float64Array(aligned(8));
  else if (descr === "<i4") data = new Int32Array(aligned(4));
  else if (descr === "<i8") data = Array.from(new BigInt64Array(aligned(8)), Number);
  else if (/^<U\d+$/.test(descr)) {
    const width = +descr.slice(2);
    data = [];
    for (let i = 0; i < count; i++) {
      let text = "";
      for (let c = 0; c < width; c++) {
        const code = body.readUInt32LE((i * width + c) * 4);
        if (code === 0) break;
        text += String.fromCodePoint(code);
      }
      data.push(text);
    }
  } else throw new Error(name + ": dtype " + descr + " is not read here");
  return { descr, shape, data };
}
