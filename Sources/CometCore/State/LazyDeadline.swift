/// One connection's timeout, kept as a deadline and re-armed lazily.
///
/// A keep-alive connection moves its deadline on every request (idle → request → none → idle …). Scheduling and
/// cancelling a timer each time costs an allocation and, on Linux, a `timerfd_settime` system call. Instead the
/// deadline is only stored; a timer is armed when none is armed yet or the new deadline is earlier than the armed
/// one, and when an armed timer fires before the (moved) deadline it is re-armed once. Times are monotonic
/// nanoseconds; the machine does no I/O.
public struct LazyDeadline<Kind: Sendable & Equatable>: Sendable {
    /// The current deadline, if any.
    public private(set) var deadline: Int64?
    /// What the current deadline is for.
    public private(set) var kind: Kind?
    private var armedAt: Int64?

    /// Creates a machine with no deadline.
    public init() {}

    /// What the connection must do about its timer.
    public enum TimerAction: Sendable, Equatable {
        /// Nothing.
        case none
        /// Schedule the timer at this time (cancelling an armed one).
        case arm(at: Int64)
    }

    /// Sets the deadline.
    public mutating func set(_ kind: Kind, at deadline: Int64) -> TimerAction {
        self.deadline = deadline
        self.kind = kind
        if let armedAt = self.armedAt, armedAt <= deadline {
            return .none  // the armed timer fires first and re-arms
        }
        self.armedAt = deadline
        return .arm(at: deadline)
    }

    /// Clears the deadline (an armed timer fires later and finds nothing to do).
    public mutating func clear() {
        self.deadline = nil
        self.kind = nil
    }

    /// What to do when the armed timer fires.
    public enum FireAction: Sendable, Equatable {
        /// No deadline any more.
        case none
        /// The deadline moved: schedule the timer again at this time.
        case rearm(at: Int64)
        /// The deadline passed.
        case expired(Kind)
    }

    /// The armed timer fired at `now`.
    public mutating func fired(now: Int64) -> FireAction {
        self.armedAt = nil
        guard let deadline = self.deadline, let kind = self.kind else { return .none }
        if now < deadline {
            self.armedAt = deadline
            return .rearm(at: deadline)
        }
        self.clear()
        return .expired(kind)
    }
}
