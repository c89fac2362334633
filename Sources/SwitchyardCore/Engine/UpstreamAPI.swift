/// The upstream API a request is for.
public enum UpstreamAPI: Sendable, CaseIterable {
    case messages
    case countTokens

    var path: String {
        switch self {
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        }
    }

    var auditName: String {
        switch self {
        case .messages: "messages"
        case .countTokens: "count_tokens"
        }
    }
}
