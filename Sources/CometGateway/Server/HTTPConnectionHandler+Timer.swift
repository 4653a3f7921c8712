import CometCore
import NIOCore

/// A gateway connection's single deadline (idle, request or poll), on its loop's ``ConnectionTimers``.
extension HTTPConnectionHandler: DeadlineOwner {
    /// Holds a poll until `seconds` from now (called by the poll subscription once it waits for live messages).
    func holdPoll(for seconds: Double) {
        guard let context = self.context else { return }
        self.arm(self.machine.holdPoll(until: self.now(context) + self.nanoseconds(seconds)))
    }

    func deadlineReached() {
        guard let context = self.context else { return }
        switch self.machine.timerFired(now: self.now(context)) {
        case .none:
            break
        case .rearm(let at):
            self.shard?.timers.set(self.timerID, at: at, owner: self)
        case .closeIdle where !self.pipelined.isEmpty:
            self.pipelined.closeWhenWritten = true  // after the answers still waiting for the broker
        case .closeIdle:
            self.close(context: context)
        case .requestTimedOut:
            self.fail(GatewayError(.requestTimeout, "request not received in time"), context: context)
        case .pollExpired:
            if case .holding(let subscription) = self.exchange { subscription.pollTimedOut() }
        }
    }

    func arm(_ action: LazyDeadline<HTTPConnectionStateMachine.Timeout>.TimerAction) {
        if case .arm(let at) = action {
            self.shard?.timers.set(self.timerID, at: at, owner: self)
        }
    }

    func now(_ context: ChannelHandlerContext) -> Int64 {
        Int64(context.eventLoop.now.uptimeNanoseconds)
    }

    func nanoseconds(_ seconds: Double) -> Int64 {
        Int64(seconds * 1_000_000_000)
    }
}
