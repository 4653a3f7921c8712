/// The deadlines of many owners (an event loop's connections), earliest first, for one timer to serve them all.
///
/// Each owner has at most one deadline. Setting or removing one is O(log n) at most and never searches: a replaced or
/// removed deadline stays in the heap as a stale entry, recognised and dropped when it reaches the top (an entry is
/// live while its owner's current deadline is the entry's). Stale entries are bounded: when a new deadline finds them
/// outnumbering the live ones (plus a slack), the heap is rebuilt from the live ones (amortized O(1) per deadline).
///
/// A NIO scheduled task per connection cost the same insertion, but its cancellation is a linear search of the event
/// loop's task heap: with 10k connections each holding an idle timer, closing them all (a reconnect storm) cost
/// about 5 µs per connection in that search alone.
public struct DeadlineQueue<Owner> {
    /// A deadline in the heap: live while `owners[id]?.at == at`.
    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline var at: Int64
        @usableFromInline var id: UInt64

        @inlinable
        init(at: Int64, id: UInt64) {
            self.at = at
            self.id = id
        }
    }

    @usableFromInline var heap: [Entry] = []
    @usableFromInline var owners: [UInt64: (at: Int64, owner: Owner)] = [:]
    /// Stale entries allowed beyond the live ones before a rebuild.
    @usableFromInline let slack: Int

    /// Creates an empty queue; `slack` is how many stale entries it keeps beyond the number of live ones.
    @inlinable
    public init(slack: Int = 1024) {
        self.slack = slack
    }

    /// The number of owners with a deadline.
    @inlinable
    public var count: Int { self.owners.count }

    /// The number of entries in the heap, stale ones included (for tests).
    public var storedEntries: Int { self.heap.count }

    /// Sets `id`'s deadline (replacing any) to `at`, with the owner to hand back when it is reached. Returns true when
    /// this deadline is now the earliest, so that the caller's timer must fire sooner.
    @inlinable @discardableResult
    public mutating func set(_ id: UInt64, at: Int64, owner: Owner) -> Bool {
        self.owners[id] = (at, owner)
        self.push(Entry(at: at, id: id))
        self.compactIfNeeded()
        return self.heap.first.map { $0.id == id && $0.at == at } ?? false
    }

    /// Removes `id`'s deadline, if any.
    @inlinable
    public mutating func remove(_ id: UInt64) {
        self.owners.removeValue(forKey: id)
    }

    /// The earliest live deadline, dropping stale entries on the way.
    @inlinable
    public mutating func earliest() -> Int64? {
        self.dropStale()
        return self.heap.first?.at
    }

    /// Removes and returns one owner whose deadline is at or before `now`, or nil when none is due.
    @inlinable
    public mutating func popDue(now: Int64) -> (id: UInt64, owner: Owner)? {
        self.dropStale()
        guard let top = self.heap.first, top.at <= now else { return nil }
        self.popTop()
        guard let owner = self.owners.removeValue(forKey: top.id) else { return nil }
        return (top.id, owner.owner)
    }

    // MARK: - Heap

    @inlinable
    func isLive(_ entry: Entry) -> Bool {
        self.owners[entry.id]?.at == entry.at
    }

    @inlinable
    mutating func dropStale() {
        while let top = self.heap.first, !self.isLive(top) {
            self.popTop()
        }
    }

    @inlinable
    mutating func compactIfNeeded() {
        guard self.heap.count > 2 * self.owners.count + self.slack else { return }
        self.heap = self.owners.map { Entry(at: $0.value.at, id: $0.key) }
        // Heapify bottom-up: O(n).
        var index = self.heap.count / 2 - 1
        while index >= 0 {
            self.siftDown(index)
            index -= 1
        }
    }

    @inlinable
    mutating func push(_ entry: Entry) {
        self.heap.append(entry)
        var child = self.heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.heap[child].at < self.heap[parent].at else { break }
            self.heap.swapAt(child, parent)
            child = parent
        }
    }

    @inlinable
    mutating func popTop() {
        let last = self.heap.removeLast()
        guard !self.heap.isEmpty else { return }
        self.heap[0] = last
        self.siftDown(0)
    }

    @inlinable
    mutating func siftDown(_ start: Int) {
        var parent = start
        let count = self.heap.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            let right = left + 1
            let smaller = right < count && self.heap[right].at < self.heap[left].at ? right : left
            guard self.heap[smaller].at < self.heap[parent].at else { return }
            self.heap.swapAt(smaller, parent)
            parent = smaller
        }
    }
}

extension DeadlineQueue: Sendable where Owner: Sendable {}
