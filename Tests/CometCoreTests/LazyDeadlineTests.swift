import CometCore
import Testing

@Suite("LazyDeadline")
struct LazyDeadlineTests {
    enum Kind: Sendable, Equatable { case idle, request }

    @Test("The first deadline arms the timer; a later one does not; an earlier one re-arms")
    func arming() {
        var machine = LazyDeadline<Kind>()
        #expect(machine.set(.idle, at: 60) == .arm(at: 60))
        #expect(machine.set(.idle, at: 70) == .none)
        #expect(machine.set(.request, at: 10) == .arm(at: 10))
        #expect(machine.kind == .request)
        #expect(machine.deadline == 10)
    }

    @Test("A timer firing before a moved deadline re-arms once, then expires with the kind")
    func firing() {
        var machine = LazyDeadline<Kind>()
        _ = machine.set(.idle, at: 60)
        _ = machine.set(.idle, at: 100)
        #expect(machine.fired(now: 60) == .rearm(at: 100))
        #expect(machine.set(.idle, at: 120) == .none, "still armed at 100")
        #expect(machine.fired(now: 100) == .rearm(at: 120))
        #expect(machine.fired(now: 121) == .expired(.idle))
        #expect(machine.deadline == nil)
        #expect(machine.fired(now: 200) == .none)
    }

    @Test("A cleared deadline makes the armed timer a no-op; a new one after firing arms again")
    func clearing() {
        var machine = LazyDeadline<Kind>()
        _ = machine.set(.request, at: 10)
        machine.clear()
        #expect(machine.fired(now: 10) == .none)
        #expect(machine.set(.idle, at: 70) == .arm(at: 70))
    }
}
