import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// What every endpoint does with its caller: name the request, check its key, read its body
/// within a limit, and write a JSON answer or an error in Anthropic's envelope.
struct EndpointIO: Sendable {
    // MARK: Reading

    /// Reads the body up to `limit`; a larger body is refused without being read further.
    func readBody(_ request: Request, limit: Int) async throws(RouterError) -> ByteBuffer {
        try await readBody(request.body, declaredLength: request.headers[.contentLength], limit: limit)
    }

    func readBody(_ body: RequestBody, declaredLength: String?, limit: Int) async throws(RouterError) -> ByteBuffer {
        if let declared = declaredLength.flatMap({ Int($0) }), declared > limit {
            throw .tooLarge(limit: limit)
        }
        var collected = ByteBuffer()
        do {
            for try await chunk in body {
                if collected.readableBytes + chunk.readableBytes > limit { throw RouterError.tooLarge(limit: limit) }
                if collected.readableBytes == 0 {
                    collected = chunk
                } else {
                    var chunk = chunk
                    collected.writeBuffer(&chunk)
                }
            }
        } catch let error as RouterError {
            throw error
        } catch {
            var failure = RouterError.invalidRequest("could not read the request body: \(error)")
            failure.closeConnection = true
            throw failure
        }
        return collected
    }

    /// The calling client when `clients:` is configured (nil when it is not); 401 otherwise.
    func authenticate(_ request: Request, table: RoutingTable) -> Result<ClientCredential?, RouterError> {
        authenticate(HTTPHeaders(request.headers), table: table)
    }

    func authenticate(_ headers: HTTPHeaders, table: RoutingTable) -> Result<ClientCredential?, RouterError> {
        switch ClientAuthenticator(clients: table.config.clients).authenticate(headers) {
        case .open: .success(nil)
        case .client(let client): .success(client)
        case .missingKey: .failure(.authentication("a Switchyard client key is required (x-api-key or Authorization: Bearer)"))
        case .unknownKey: .failure(.authentication("invalid client key"))
        }
    }

    func requestID(for request: Request) -> String {
        requestID(given: request.headers[HTTPField.Name(HeaderPolicy.requestIDName)!])
    }

    /// The caller's `x-request-id` when it is one Switchyard can carry; a new one otherwise.
    func requestID(given: String?) -> String {
        if let given, RequestID.isAcceptable(Substring(given)) { return given }
        return RequestID.generate()
    }

    // MARK: Writing

    /// `requestID`: set for API answers (Anthropic's `request-id` and Switchyard's `x-request-id`).
    func writeJSON(status: Int, body: ByteBuffer, to writer: consuming ResponseWriter, requestID: String? = nil) async throws {
        var headers: HTTPHeaders = ["content-type": "application/json", "content-length": String(body.readableBytes)]
        if let requestID {
            headers.add(name: "request-id", value: requestID)
            headers.add(name: HeaderPolicy.requestIDName, value: requestID)
        }
        try await writer.writeResponse(status: status, headers: headers, body: body)
    }

    func writeError<Writer: ProxyResponseWriter & ~Copyable>(
        _ error: RouterError, requestID: String, to writer: consuming Writer, channel: any Channel, extraHeaders: HTTPHeaders = [:]
    ) async throws {
        let body = error.body(requestID: requestID)
        var headers = error.answerHeaders(requestID: requestID)
        headers.add(contentsOf: extraHeaders)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: HeaderPolicy.requestIDName, value: requestID)
        if error.closeConnection { headers.add(name: "connection", value: "close") }
        try await writer.writeResponse(status: error.status, headers: headers, body: body)
        if error.closeConnection {
            // The rest of the request was not read; the connection cannot carry another one.
            channel.close(promise: nil)
        }
    }
}
