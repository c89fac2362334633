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

/// The API a caller speaks on a proxy endpoint. A Chat Completions request is translated to a
/// Messages request before it is routed, so every caller API maps to one upstream API.
public enum CallerAPI: Sendable, CaseIterable {
    case messages
    case countTokens
    case chatCompletions

    var upstream: UpstreamAPI {
        switch self {
        case .messages, .chatCompletions: .messages
        case .countTokens: .countTokens
        }
    }

    /// The path the caller sent the request to.
    var path: String {
        switch self {
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        case .chatCompletions: "/v1/chat/completions"
        }
    }

    /// The audit line's `api`.
    var auditName: String {
        switch self {
        case .messages: "messages"
        case .countTokens: "count_tokens"
        case .chatCompletions: "chat_completions"
        }
    }
}
