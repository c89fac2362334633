import NIOHTTP1

/// One libFuzzer input: its first byte picks the side (requests, or answers to POST, POST, GET)
/// and where the rest is cut in two; the rest goes to Switchyard's HTTP/1 decoder and to NIO's.
/// Whatever the bytes, both must pass on the same parts and errors.
func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let control = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let kind: DecoderDifferential.Kind = control & 1 == 0 ? .requests : .responses(to: [.POST, .POST, .GET])
    let cut = Int(control >> 1) * bytes.count / 127
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderFieldSize = 512
    limits.maxHeaderListSize = 512
    limits.maxHeaderFieldCount = 16
    let pieces = DecoderDifferential.pieces(bytes, cuts: [cut])
    let ours = DecoderDifferential.run(pieces, kind, ours: true, limits: limits)
    let nio = DecoderDifferential.run(pieces, kind, ours: false, limits: limits)
    if ours.events != nio.events {
        fatalError("the decoders differ\n--- Switchyard's\n\(ours)\n--- NIO's\n\(nio)")
    }
    return 0
}
