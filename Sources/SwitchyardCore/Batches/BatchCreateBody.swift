import NIOCore

/// The body of `POST /v1/messages/batches`, validated whole before anything is stored: up to
/// 100,000 requests, each with a unique `custom_id` (1–64 of `[A-Za-z0-9_-]`) and `params` that
/// are a Messages request naming a route. One bad request refuses the whole create.
struct BatchCreateBody {
    struct Request: Sendable {
        var customID: String
        /// The caller's `params` JSON, byte for byte.
        var params: [UInt8]
        /// `params.model`.
        var model: String
    }

    static let maxRequests = 100_000
    static let maxBytes = 256 << 20

    static func parse(_ buffer: ByteBuffer) throws(RouterError) -> [Request] {
        let result: Result<[Request], RouterError> = buffer.withUnsafeReadableBytes { bytes in
            do throws(RouterError) {
                return .success(try parse(bytes))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer) throws(RouterError) -> [Request] {
        let skim: JSONSkimmer.Skim
        do {
            skim = try JSONSkimmer.skim(bytes)
        } catch {
            throw .invalidRequest("request body is not valid JSON: \(error)")
        }
        guard skim.topLevel == .object else { throw .invalidRequest("request body must be a JSON object") }
        guard let list = JSONSkimmer.member("requests", in: skim, bytes: bytes) else { throw .invalidRequest("requests: Field required") }
        guard list.kind == .array else { throw .invalidRequest("requests: Input should be a valid list") }
        let elements = JSONArrayScanner.elements(in: bytes, array: list.value)
        guard !elements.isEmpty else { throw .invalidRequest("requests: List should have at least 1 item") }
        guard elements.count <= maxRequests else {
            throw .invalidRequest("requests: a batch holds at most \(maxRequests) requests, this one has \(elements.count)")
        }
        var requests: [Request] = []
        requests.reserveCapacity(elements.count)
        var seen: [String: Int] = [:]
        seen.reserveCapacity(elements.count)
        for (index, range) in elements.enumerated() {
            let element = UnsafeRawBufferPointer(rebasing: bytes[range])
            let request = try parseRequest(element, path: "requests[\(index)]")
            if let first = seen.updateValue(index, forKey: request.customID) {
                throw .invalidRequest("requests[\(index)].custom_id: '\(request.customID)' is used twice (also requests[\(first)])")
            }
            requests.append(request)
        }
        return requests
    }

    private static func parseRequest(_ bytes: UnsafeRawBufferPointer, path: String) throws(RouterError) -> Request {
        guard let skim = try? JSONSkimmer.skim(bytes), skim.topLevel == .object else {
            throw .invalidRequest("\(path): Input should be an object with custom_id and params")
        }
        for member in skim.members {
            let key = JSONSkimmer.decodeString(bytes, contentRange: member.key) ?? ""
            guard key == "custom_id" || key == "params" else { throw .invalidRequest("\(path).\(key): Extra inputs are not permitted") }
        }
        guard let idMember = JSONSkimmer.member("custom_id", in: skim, bytes: bytes) else { throw .invalidRequest("\(path).custom_id: Field required") }
        guard let customID = JSONSkimmer.stringValue(idMember, bytes: bytes) else {
            throw .invalidRequest("\(path).custom_id: Input should be a valid string")
        }
        guard isValidCustomID(customID) else {
            throw .invalidRequest("\(path).custom_id: '\(customID.prefix(80))' must be 1 to 64 characters of letters, digits, '_' and '-'")
        }
        guard let paramsMember = JSONSkimmer.member("params", in: skim, bytes: bytes) else { throw .invalidRequest("\(path).params: Field required") }
        guard paramsMember.kind == .object else { throw .invalidRequest("\(path).params: Input should be an object") }
        let params = Array(UnsafeRawBufferPointer(rebasing: bytes[paramsMember.value]))
        let body: InboundBody
        do {
            body = try InboundBody.parse(ByteBuffer(bytes: params), requireMessages: true)
        } catch {
            throw .invalidRequest("\(path).params.\(error.message)")
        }
        guard !body.stream else { throw .invalidRequest("\(path).params.stream: batch requests cannot stream") }
        return Request(customID: customID, params: params, model: body.model)
    }

    static func isValidCustomID(_ text: String) -> Bool {
        let utf8 = text.utf8
        return (1...64).contains(utf8.count)
            && utf8.allSatisfy {
                ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            }
    }
}

/// The byte ranges of a JSON array's elements. The document was validated by ``JSONSkimmer``
/// already, so this only has to find where each element ends (strings and nesting respected).
enum JSONArrayScanner {
    static func elements(in bytes: UnsafeRawBufferPointer, array: Range<Int>) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var index = array.lowerBound + 1
        let end = array.upperBound - 1  // the closing bracket
        func skipWhitespace() {
            while index < end, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
        }
        while true {
            skipWhitespace()
            guard index < end else { return ranges }
            let start = index
            var depth = 0
            var inString = false
            var escaped = false
            scan: while index < end {
                let byte = bytes[index]
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                } else {
                    switch byte {
                    case UInt8(ascii: "\""): inString = true
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                    case UInt8(ascii: ","), 0x20, 0x0A, 0x0D, 0x09: if depth == 0 { break scan }
                    default: break
                    }
                }
                index += 1
            }
            ranges.append(start..<index)
            skipWhitespace()
            if index < end, bytes[index] == UInt8(ascii: ",") { index += 1 }
        }
    }
}
