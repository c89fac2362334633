import NIOCore
import SwitchyardCore

/// One libFuzzer input: any bytes as a Messages request body. The parser must never crash;
/// whatever it accepts must survive the `model` patch and parse again.
func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    if let body = try? InboundBody.parse(buffer, requireMessages: true) {
        let patched = body.withModel(Array(#""claude-sonnet-4-20250514""#.utf8))
        guard (try? InboundBody.parse(patched, requireMessages: true))?.model == "claude-sonnet-4-20250514" else {
            fatalError("accepted body does not survive the model patch")
        }
    }
    return 0
}
