/// How one request ended, as recorded or as replayed with a candidate: what the summary counts.
public struct RequestResult: Sendable, Equatable {
    public struct Attempt: Sendable, Equatable {
        public var model: String
        public var duration: Duration
    }

    public var status: Int
    /// A `RequestOutcome` name, or `unknown`.
    public var outcome: String
    /// The model whose answer went to the caller.
    public var model: String?
    public var downgraded: Bool
    public var attempts: [Attempt]
    /// The model the recording never tried that the request's walk reached: what happened next is
    /// not known.
    public var unknownModel: String?

    public static let unknownOutcome = "unknown"

    public init(status: Int, outcome: String, model: String?, downgraded: Bool, attempts: [Attempt], unknownModel: String? = nil) {
        self.status = status
        self.outcome = outcome
        self.model = model
        self.downgraded = downgraded
        self.attempts = attempts
        self.unknownModel = unknownModel
    }

    /// What the recording says happened.
    public init(recorded request: RecordedRequest) {
        self.init(
            status: request.status, outcome: request.outcome, model: request.model, downgraded: request.downgraded,
            attempts: request.attempts.map { Attempt(model: $0.model, duration: $0.duration) }
        )
    }

    /// What the caller was told, in one word: `ok`, the error status (`529`), `stream_error` (an
    /// `event: error` after a 200), `cancelled` or `unknown`.
    public var answerKey: String {
        switch outcome {
        case RequestOutcome.ok.rawValue: return "ok"
        case RequestOutcome.streamError.rawValue: return "stream_error"
        case RequestOutcome.cancelled.rawValue: return "cancelled"
        case Self.unknownOutcome: return Self.unknownOutcome
        default: return String(status)
        }
    }
}
