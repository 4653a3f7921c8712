import CometCore
import NIOCore

/// The last complete single-channel poll response rendered on one event loop, shared by every poll it answers.
///
/// When messages reach a channel's long pollers, each poller that was caught up is answered with the same bytes: the
/// head (whose only varying field is the once-a-second `Date`), then `{"messages":[…],"last_event_id":"ID"}`. The
/// fan-out renders that response once per batch of messages, per second and per keep-alive mode, and every poller
/// writes the shared buffer: no per-poller encoding, allocation or copy. Pollers that fell behind by the same
/// messages (a loaded server answers them two or three at a time) share a response the same way. Confined to its
/// shard's event loop.
final class PollResponseCache {
    private var messages: [Message] = []
    private var second = -1
    private var keepAlive = false
    private var variant = ""
    private var response = ByteBuffer()

    /// The response for exactly `messages` (the same objects, in order) in the poll transport's framing `variant`
    /// (``PollTransport/variant``) with the current `Date` of `dateCache`; `render` builds it when it is not cached.
    func response(
        for messages: [(message: Message, channelIndex: Int)],
        variant: String,
        keepAlive: Bool,
        dateCache: HTTPDateCache,
        render: (_ date: String) -> ByteBuffer
    ) -> ByteBuffer {
        let date = dateCache.current
        if self.second == dateCache.second, self.keepAlive == keepAlive, self.variant == variant, self.holds(messages) {
            return self.response
        }
        self.response = render(date)
        self.messages = messages.map(\.message)
        self.second = dateCache.second
        self.keepAlive = keepAlive
        self.variant = variant
        return self.response
    }

    private func holds(_ messages: [(message: Message, channelIndex: Int)]) -> Bool {
        guard messages.count == self.messages.count else { return false }
        for index in messages.indices where messages[index].message !== self.messages[index] {
            return false
        }
        return true
    }
}

@available(*, unavailable)
extension PollResponseCache: Sendable {}
