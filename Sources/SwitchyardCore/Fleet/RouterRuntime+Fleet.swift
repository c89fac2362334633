extension RouterRuntime {
    /// A notification from the fleet channel: decoded, and applied unless it is this process's
    /// own or not a fleet event at all.
    func applyFleetPayload(_ payload: String, ownInstance: String) async {
        guard let event = FleetEvent.decode(payload) else {
            metrics.fleetEvents(.ignored, count: 1)
            return
        }
        guard event.instance != ownInstance else { return }
        await applyFleetEvent(event)
    }

    /// Merges another replica's event into the model of the same name and upstream model (the
    /// rule of ``ModelState/apply(_:from:now:wallNowMs:)``): breaker transitions it causes are
    /// audited and counted like local ones, their reason naming the replica.
    @discardableResult
    public func applyFleetEvent(_ event: FleetEvent) async -> ModelState.PeerApplication {
        guard let model = table.model(named: event.model), model.spec.upstreamModel == event.upstreamModel else {
            metrics.fleetEvents(.ignored, count: 1)
            return .nothing
        }
        let now = clock.now()
        let wallNow = wallClock()
        let applied = model.health.withState { $0.apply(event.change, from: event.replica, now: now, wallNowMs: wallNow) }
        metrics.fleetEvents(applied.changed ? .applied : .ignored, count: 1)
        if let transition = applied.transition {
            await record([ObservedTransition(model: model.name, transition: transition, fromPeer: event.replica)])
        } else if applied.changed {
            // A longer open period or a rate limit: no transition, but the batch runner may now
            // wait differently.
            batches.doorbell.ring()
        }
        return applied
    }
}
