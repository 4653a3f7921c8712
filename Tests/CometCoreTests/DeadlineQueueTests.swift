import CometCore
import Testing

@Suite("DeadlineQueue")
struct DeadlineQueueTests {
    /// Pops every owner due at `now`, in order.
    private func due(_ queue: inout DeadlineQueue<String>, now: Int64) -> [String] {
        var owners: [String] = []
        while let next = queue.popDue(now: now) { owners.append(next.owner) }
        return owners
    }

    @Test("Owners come out earliest first, only once due")
    func order() {
        var queue = DeadlineQueue<String>()
        queue.set(1, at: 30, owner: "c")
        queue.set(2, at: 10, owner: "a")
        queue.set(3, at: 20, owner: "b")
        let earliest = queue.earliest()
        #expect(earliest == 10)
        #expect(self.due(&queue, now: 5).isEmpty)
        #expect(self.due(&queue, now: 20) == ["a", "b"])
        #expect(queue.count == 1)
        #expect(self.due(&queue, now: 100) == ["c"])
        let none = queue.earliest()
        #expect(none == nil)
        #expect(queue.count == 0)
    }

    @Test("set reports whether the new deadline is the earliest")
    func earliestReport() {
        var queue = DeadlineQueue<String>()
        let first = queue.set(1, at: 50, owner: "a")
        let later = queue.set(2, at: 60, owner: "b")
        let earlier = queue.set(3, at: 40, owner: "c")
        #expect(first)
        #expect(!later)
        #expect(earlier)
    }

    @Test("A removed owner never comes out; a moved deadline counts only at its new time")
    func removeAndMove() {
        var queue = DeadlineQueue<String>()
        queue.set(1, at: 10, owner: "a")
        queue.set(2, at: 20, owner: "b")
        queue.remove(1)
        queue.remove(99)  // unknown: nothing happens
        queue.set(2, at: 40, owner: "b2")  // moved later
        let moved = queue.earliest()
        #expect(moved == 40)
        #expect(self.due(&queue, now: 30).isEmpty)
        #expect(self.due(&queue, now: 40) == ["b2"])
        queue.set(3, at: 50, owner: "c")
        queue.set(3, at: 45, owner: "c")  // moved earlier
        #expect(self.due(&queue, now: 45) == ["c"])
        #expect(self.due(&queue, now: 1000).isEmpty, "its old entry is stale")
    }

    @Test("Setting the same deadline twice fires the owner once")
    func sameDeadlineTwice() {
        var queue = DeadlineQueue<String>()
        queue.set(7, at: 10, owner: "a")
        queue.set(7, at: 10, owner: "a")
        #expect(self.due(&queue, now: 10) == ["a"])
    }

    @Test("Stale entries are bounded: a new deadline rebuilds the heap when they outnumber the live ones")
    func staleEntriesBounded() {
        var queue = DeadlineQueue<Int>(slack: 16)
        for id in 0..<1000 {
            queue.set(UInt64(id), at: Int64(1000 + id), owner: id)
        }
        for id in 0..<990 { queue.remove(UInt64(id)) }
        #expect(queue.count == 10)
        queue.set(5000, at: 1, owner: 5000)
        #expect(queue.storedEntries <= 2 * queue.count + 16)
        var order: [Int] = []
        while let next = queue.popDue(now: .max) { order.append(next.owner) }
        #expect(order == [5000] + Array(990..<1000))
    }

    @Test("Many interleaved deadlines come out sorted, each exactly once")
    func randomized() {
        var generator = SystemRandomNumberGenerator()
        var queue = DeadlineQueue<Int>(slack: 8)
        var expected: [UInt64: Int64] = [:]
        for step in 0..<5000 {
            let id = UInt64.random(in: 0..<300, using: &generator)
            if Bool.random(using: &generator) {
                let at = Int64.random(in: 0..<10000, using: &generator)
                queue.set(id, at: at, owner: step)
                expected[id] = at
            } else {
                queue.remove(id)
                expected[id] = nil
            }
        }
        var popped: [(UInt64, Int64)] = []
        var now: Int64 = 0
        while now < 10000 {
            now += 100
            while let next = queue.popDue(now: now) {
                popped.append((next.id, expected[next.id] ?? -1))
            }
        }
        #expect(popped.count == expected.count)
        #expect(Set(popped.map(\.0)) == Set(expected.keys))
        #expect(popped.map(\.1) == popped.map(\.1).sorted())
    }
}
