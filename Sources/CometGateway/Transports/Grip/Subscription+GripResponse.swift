import CometCore
import NIOCore

/// GRIP response holds: answered once, by a message or by the application's own response.
extension Subscription {
    /// Answers the hold with the first of `messages` meant for response holds.
    /// - Returns: Whether it answered (false: none was meant for it; it keeps waiting).
    func answerHold(_ messages: [(message: Message, channelIndex: Int)], _ hold: GripResponseTransport) -> Bool {
        guard !self.isFinished else { return true }
        for (message, _) in messages {
            guard let response = GripResponses.response(for: message, held: hold.held) else { continue }
            self.finish()
            let bytes = GripResponses.render(response, keepAlive: self.keepAlive, date: self.shard.dateCache.current,
                                             headOnly: hold.headOnly)
            self.writeFinal(bytes, keepAlive: self.keepAlive)
            return true
        }
        return false
    }

    /// Answers the hold with the application's response (timeout, channel deleted, drain).
    func answerHoldWithHeld(_ hold: GripResponseTransport, keepAlive: Bool) {
        guard !self.isFinished else { return }
        self.finish()
        let bytes = GripResponses.render(hold.held, keepAlive: keepAlive, date: self.shard.dateCache.current,
                                         headOnly: hold.headOnly)
        self.writeFinal(bytes, keepAlive: keepAlive)
    }
}
