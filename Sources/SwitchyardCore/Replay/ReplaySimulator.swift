/// `switchyard replay`'s engine: the recorded requests, arriving at their recorded `ts`, walked
/// through a candidate configuration's routes, breakers and retry rules on the recorded clock.
///
/// Requests overlap in time, as they did: every step of every walk (an arrival, an attempt's end, a
/// backoff's end, an operator's drain) is an event at an instant of the recorded clock, handled in
/// time order (ties in the order they were scheduled), so each decision sees the breakers as they
/// stood at that instant. Jitter is drawn from a seeded generator: the same inputs give the same
/// replay.
public enum ReplaySimulator {
    public struct Run: Sendable {
        /// One per recorded request, in the recording's order.
        public var results: [RequestResult]
        public var transitions: [TimedTransition]
    }

    public static func run(_ recording: AuditRecording, config: SwitchyardConfig, seed: UInt64) -> Run {
        // A table of its own: fresh breakers, nothing shared with a running router.
        let table = RoutingTable(config: config)
        let timeline = OutcomeTimeline(recording.requests)
        let requestTimeout = config.server.requestTimeout
        var random = SplitMix64(seed: seed)
        var queue = EventQueue<Event>()
        for index in recording.requests.indices {
            queue.push(.arrival(index), at: recording.requests[index].firstSelection)
        }
        for index in recording.drains.indices {
            queue.push(.drain(index), at: recording.drains[index].at)
        }
        var walks: [Int: ReplayWalk] = [:]
        var results = [RequestResult?](repeating: nil, count: recording.requests.count)
        var transitions: [TimedTransition] = []
        var observed: [ObservedTransition] = []

        while let (now, event) = queue.pop() {
            let index: Int
            let next: ReplayWalk.Next
            switch event {
            case .drain(let drain):
                let drain = recording.drains[drain]
                table.model(named: drain.model)?.health.withState { $0.disabledBy = drain.disabled ? drain.by : nil }
                continue
            case .headroom(let request):
                walks[request]?.noteHeadroom(at: now, originMs: recording.originMs)
                continue
            case .arrival(let request):
                index = request
                let recorded = recording.requests[request]
                guard let route = table.route(named: recorded.requestedModel) else {
                    // The candidate has no route or alias by that name: the caller gets 404.
                    results[request] = RequestResult(status: 404, outcome: RequestOutcome.rejected.rawValue, model: nil, downgraded: false, attempts: [])
                    continue
                }
                var walk = ReplayWalk(request: recorded, route: route, requestTimeout: requestTimeout)
                next = walk.select(at: now, timeline: timeline, transitions: &observed)
                walks[request] = walk
            case .attemptEnds(let request):
                index = request
                next = walks[request]!.attemptEnded(at: now, timeline: timeline, random: &random, transitions: &observed)
            case .waitEnds(let request):
                index = request
                next = walks[request]!.select(at: now, timeline: timeline, transitions: &observed)
            }
            for transition in observed {
                transitions.append(
                    TimedTransition(
                        at: now, model: transition.model, from: transition.transition.from, to: transition.transition.to,
                        reason: transition.transition.reason
                    )
                )
            }
            observed.removeAll()
            switch next {
            case .attemptEnds(let at, let headroomAt):
                if let headroomAt { queue.push(.headroom(index), at: headroomAt) }
                queue.push(.attemptEnds(index), at: at)
            case .waitEnds(let at):
                queue.push(.waitEnds(index), at: at)
            case .finished(let result):
                results[index] = result
                walks[index] = nil
            }
        }
        return Run(results: results.map { $0! }, transitions: transitions)
    }

    private enum Event {
        case arrival(Int)
        case attemptEnds(Int)
        case waitEnds(Int)
        case drain(Int)
        /// An attempt's answer has its head: its rate-limit reading is noted.
        case headroom(Int)
    }
}

/// Events by instant, ties in the order they were pushed: a binary heap.
struct EventQueue<Event> {
    private var heap: [(at: MonotonicInstant, order: Int, event: Event)] = []
    private var pushed = 0

    mutating func push(_ event: Event, at instant: MonotonicInstant) {
        heap.append((instant, pushed, event))
        pushed += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (MonotonicInstant, Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, Self.precedes(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count, Self.precedes(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (first.at, first.event)
    }

    private static func precedes(_ a: (at: MonotonicInstant, order: Int, event: Event), _ b: (at: MonotonicInstant, order: Int, event: Event)) -> Bool {
        (a.at, a.order) < (b.at, b.order)
    }
}

/// SplitMix64: a small seeded generator, so that a replay's jitter is the same every run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
