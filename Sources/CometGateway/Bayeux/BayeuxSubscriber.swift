import CometCore

/// One subscription of a Bayeux client in the hub: a channel (`/chat/room1` → `chat.room1`) or a wildcard
/// (`/chat/*` → the pattern `chat.*`). It hands each message to its session, which queues it once even when several
/// of its subscriptions match. Confined to the session's event loop.
final class BayeuxSubscriber: HubSubscriber {
    let channels: [ChannelName]
    let pattern: ChannelPattern?
    var slots: [Int]
    /// Strong: a removal deferred to the end of a shard's batch may still hand this subscriber a message after its
    /// session ended (it ignores it). The cycle is broken when the session ends (it drops its subscriptions).
    private let session: BayeuxSession

    init(channel: ChannelName, session: BayeuxSession) {
        self.channels = [channel]
        self.pattern = nil
        self.slots = [0]
        self.session = session
    }

    init(pattern: ChannelPattern, session: BayeuxSession) {
        self.channels = []
        self.pattern = pattern
        self.slots = []
        self.session = session
    }

    var kind: SubscriberKind { .bayeux }

    func receive(_ message: Message, channelIndex: Int) {
        if self.session.enqueue(message) { self.session.shard.needsFlush(self) }
    }

    func flush() {
        self.session.flush()
    }

    func channelDeleted(_ channel: ChannelName) {}  // a Bayeux subscription outlives its channel's history
    func streamsClosed(_ channel: ChannelName) {}  // GRIP stream holds only

    func gap(_ channel: ChannelName) {
        self.session.gap(channel)
    }

    func gap(pattern: ChannelPattern) {
        self.session.gap(pattern: pattern)
    }
}
