import CometCore
import Testing

@Suite("ChannelHistory")
struct ChannelHistoryTests {
    static let second: UInt64 = 1_000_000  // publish times are in microseconds

    /// A history holding messages with `ids`, each one byte, published at time 0, under generous limits.
    static func history(floor: UInt64 = 0, ids: [UInt64], limits: HistoryLimits = HistoryLimits()) throws -> ChannelHistory {
        var history = ChannelHistory(floor: floor)
        for id in ids {
            history.append(try makeMessage(id: id), limits: limits, now: 0)
        }
        return history
    }

    static func ids(_ messages: [Message]) -> [UInt64] { messages.map(\.id) }

    @Test("default limits")
    func defaultLimits() {
        let limits = HistoryLimits()
        #expect(limits.maxMessages == 100)
        #expect(limits.maxBytes == 1 << 20)
        #expect(limits.maxAge == 600)
    }

    @Test("a new history is empty at its floor")
    func empty() {
        let history = ChannelHistory(floor: 50)
        #expect(history.count == 0)
        #expect(history.byteCount == 0)
        #expect(history.first == nil)
        #expect(history.floor == 50)
        #expect(history.lastID == 50)
        // At the floor: exact, nothing to send.
        let atFloor = history.messages(after: 50)
        #expect(atFloor.messages.isEmpty)
        #expect(atFloor.gap == false)
        // Below the floor: messages may have been lost.
        #expect(history.messages(after: 49).gap == true)
        #expect(history.messages(after: 0).gap == true)
        // Above: a position this history never issued.
        #expect(history.messages(after: 51).gap == true)
    }

    @Test("appending keeps messages in order and counts their bytes")
    func append() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits()
        history.append(try makeMessage(id: 10, payload: "abc"), limits: limits, now: 0)
        history.append(try makeMessage(id: 20, payload: "de"), limits: limits, now: 0)
        history.append(try makeMessage(id: 30, payload: "€"), limits: limits, now: 0)
        #expect(history.count == 3)
        #expect(history.byteCount == 3 + 2 + "€".utf8.count)
        #expect(history.first?.id == 10)
        #expect(history.lastID == 30)
        #expect(history.floor == 0)
        #expect(Self.ids(history.messages(after: 0).messages) == [10, 20, 30])
    }

    // MARK: eviction

    @Test("eviction by count drops the oldest and raises the floor")
    func evictionByCount() throws {
        let history = try Self.history(ids: [1, 2, 3, 4, 5], limits: HistoryLimits(maxMessages: 3))
        #expect(history.count == 3)
        #expect(history.first?.id == 3)
        #expect(history.floor == 2)
        #expect(history.lastID == 5)
        #expect(history.byteCount == 3)
        let fromFloor = history.messages(after: 2)
        #expect(Self.ids(fromFloor.messages) == [3, 4, 5])
        #expect(fromFloor.gap == false)
        let belowFloor = history.messages(after: 1)
        #expect(Self.ids(belowFloor.messages) == [3, 4, 5])
        #expect(belowFloor.gap == true)
    }

    @Test("eviction by bytes keeps the retained payload within maxBytes")
    func evictionByBytes() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits(maxBytes: 10)
        history.append(try makeMessage(id: 1, byteCount: 4), limits: limits, now: 0)
        history.append(try makeMessage(id: 2, byteCount: 4), limits: limits, now: 0)
        #expect(history.count == 2)
        #expect(history.byteCount == 8)
        history.append(try makeMessage(id: 3, byteCount: 4), limits: limits, now: 0)  // 12 > 10: evict 1
        #expect(Self.ids(history.messages(after: 0).messages) == [2, 3])
        #expect(history.byteCount == 8)
        #expect(history.floor == 1)
        history.append(try makeMessage(id: 4, byteCount: 10), limits: limits, now: 0)  // exactly the limit: only it
        #expect(Self.ids(history.messages(after: 0).messages) == [4])
        #expect(history.byteCount == 10)
        #expect(history.floor == 3)
    }

    @Test("a payload exactly maxBytes is retained")
    func payloadAtByteLimit() throws {
        var history = ChannelHistory(floor: 0)
        history.append(try makeMessage(id: 1, byteCount: 16), limits: HistoryLimits(maxBytes: 16), now: 0)
        #expect(history.count == 1)
        #expect(history.floor == 0)
    }

    @Test("a payload larger than maxBytes is not retained and counts as lost")
    func payloadLargerThanMaxBytes() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits(maxBytes: 10)
        history.append(try makeMessage(id: 1, byteCount: 5), limits: limits, now: 0)
        history.append(try makeMessage(id: 2, byteCount: 11), limits: limits, now: 0)
        #expect(history.lastID == 2)
        #expect(history.floor == 2)
        #expect(history.byteCount <= limits.maxBytes)
        #expect(!Self.ids(history.messages(after: 0).messages).contains(2))
        // A subscriber at 1 missed message 2: a gap.
        #expect(history.messages(after: 1).gap == true)
        // A subscriber at 2 is up to date.
        let upToDate = history.messages(after: 2)
        #expect(upToDate.messages.isEmpty)
        #expect(upToDate.gap == false)
        // Later messages are retained again.
        history.append(try makeMessage(id: 3, byteCount: 5), limits: limits, now: 0)
        let afterLost = history.messages(after: 2)
        #expect(Self.ids(afterLost.messages) == [3])
        #expect(afterLost.gap == false)
    }

    @Test("maxMessages 0 retains nothing; every message counts as lost")
    func historyDisabled() throws {
        let history = try Self.history(ids: [5, 6, 7], limits: HistoryLimits(maxMessages: 0))
        #expect(history.count == 0)
        #expect(history.byteCount == 0)
        #expect(history.floor == 7)
        #expect(history.lastID == 7)
        let current = history.messages(after: 7)
        #expect(current.messages.isEmpty)
        #expect(current.gap == false)
        let behind = history.messages(after: 6)
        #expect(behind.messages.isEmpty)
        #expect(behind.gap == true)
    }

    @Test("eviction by age on append (now passed explicitly)")
    func evictionByAgeOnAppend() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits(maxAge: 10)
        history.append(try makeMessage(id: 1, publishedAt: 0), limits: limits, now: 0)
        history.append(try makeMessage(id: 2, publishedAt: 5 * Self.second), limits: limits, now: 5 * Self.second)
        #expect(history.count == 2)
        // At 20 s, message 1 is 20 s old and message 2 is 15 s old: both expired.
        history.append(try makeMessage(id: 3, publishedAt: 20 * Self.second), limits: limits, now: 20 * Self.second)
        #expect(Self.ids(history.messages(after: 0).messages) == [3])
        #expect(history.floor == 2)
        #expect(history.byteCount == 1)
    }

    @Test("evictExpired: a message exactly maxAge old stays, one microsecond older goes")
    func evictExpiredBoundary() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits(maxAge: 10)
        history.append(try makeMessage(id: 1, publishedAt: 100 * Self.second), limits: limits, now: 100 * Self.second)
        history.append(try makeMessage(id: 2, publishedAt: 105 * Self.second), limits: limits, now: 105 * Self.second)
        history.evictExpired(limits: limits, now: 110 * Self.second)
        #expect(Self.ids(history.messages(after: 0).messages) == [1, 2])
        history.evictExpired(limits: limits, now: 110 * Self.second + 1)
        #expect(Self.ids(history.messages(after: 0).messages) == [2])
        #expect(history.floor == 1)
        history.evictExpired(limits: limits, now: 200 * Self.second)
        #expect(history.count == 0)
        #expect(history.byteCount == 0)
        #expect(history.floor == 2)
        #expect(history.lastID == 2)
    }

    @Test("evictExpired ignores messages from the future (clock stepped back)")
    func evictExpiredFuture() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits(maxAge: 1)
        history.append(try makeMessage(id: 1, publishedAt: 50 * Self.second), limits: limits, now: 50 * Self.second)
        history.evictExpired(limits: limits, now: 10 * Self.second)
        #expect(history.count == 1)
    }

    @Test("maxAge 0 evicts anything older than now")
    func zeroMaxAge() throws {
        var history = ChannelHistory(floor: 0)
        let limits = HistoryLimits(maxAge: 0)
        history.append(try makeMessage(id: 1, publishedAt: 7), limits: limits, now: 7)
        #expect(history.count == 1)
        history.evictExpired(limits: limits, now: 8)
        #expect(history.count == 0)
        #expect(history.floor == 1)
    }

    // MARK: messages(after:)

    @Test("messages(after:) boundaries")
    func messagesAfterBoundaries() throws {
        // Floor 100 after evicting 100; retained 110, 120, 130.
        let history = try Self.history(floor: 90, ids: [100, 110, 120, 130], limits: HistoryLimits(maxMessages: 3))
        #expect(history.floor == 100)
        #expect(history.lastID == 130)

        let beforeFloor = history.messages(after: 95)
        #expect(Self.ids(beforeFloor.messages) == [110, 120, 130])
        #expect(beforeFloor.gap == true)

        let atFloor = history.messages(after: 100)
        #expect(Self.ids(atFloor.messages) == [110, 120, 130])
        #expect(atFloor.gap == false)

        let atAnID = history.messages(after: 110)
        #expect(Self.ids(atAnID.messages) == [120, 130])
        #expect(atAnID.gap == false)

        let betweenIDs = history.messages(after: 115)
        #expect(Self.ids(betweenIDs.messages) == [120, 130])
        #expect(betweenIDs.gap == false)

        let justBeforeLast = history.messages(after: 129)
        #expect(Self.ids(justBeforeLast.messages) == [130])
        #expect(justBeforeLast.gap == false)

        let atLast = history.messages(after: 130)
        #expect(atLast.messages.isEmpty)
        #expect(atLast.gap == false)

        let future = history.messages(after: 131)
        #expect(Self.ids(future.messages) == [110, 120, 130])
        #expect(future.gap == true)

        let farFuture = history.messages(after: UInt64.max)
        #expect(Self.ids(farFuture.messages) == [110, 120, 130])
        #expect(farFuture.gap == true)

        let zero = history.messages(after: 0)
        #expect(Self.ids(zero.messages) == [110, 120, 130])
        #expect(zero.gap == true)
    }

    @Test("messages(after:) finds the tail at every position of a long history")
    func messagesAfterEveryPosition() throws {
        let ids = (1...100).map { UInt64($0 * 3) }  // 3, 6, …, 300
        let history = try Self.history(ids: ids, limits: HistoryLimits(maxMessages: 1000))
        var wrong: [UInt64] = []
        for position in UInt64(0)...UInt64(302) {
            let result = history.messages(after: position)
            // Past lastID the position is unknown: a gap, with everything retained.
            let expected = position > 300 ? ids : ids.filter { $0 > position }
            if Self.ids(result.messages) != expected || result.gap != (position > 300) { wrong.append(position) }
        }
        #expect(wrong.isEmpty, "wrong result after these positions")
    }

    // MARK: removeAll

    @Test("removeAll drops everything and moves the floor to lastID")
    func removeAll() throws {
        var history = try Self.history(floor: 1, ids: [2, 3, 4])
        history.removeAll()
        #expect(history.count == 0)
        #expect(history.byteCount == 0)
        #expect(history.first == nil)
        #expect(history.floor == 4)
        #expect(history.lastID == 4)
        #expect(history.messages(after: 3).gap == true)
        let current = history.messages(after: 4)
        #expect(current.messages.isEmpty)
        #expect(current.gap == false)

        history.append(try makeMessage(id: 5, payload: "hello"), limits: HistoryLimits(), now: 0)
        #expect(history.byteCount == 5)
        let after = history.messages(after: 4)
        #expect(Self.ids(after.messages) == [5])
        #expect(after.gap == false)
    }

    @Test("an infinite maxAge (no age limit) does not crash")
    func infiniteMaxAge() async {
        await #expect(processExitsWith: .success) {
            var history = ChannelHistory(floor: 0)
            history.append(try makeMessage(id: 1), limits: HistoryLimits(maxAge: .infinity), now: 0)
        }
    }

    @Test("appending a non-increasing id is a programming error")
    func nonIncreasingIDTraps() async throws {
        await #expect(processExitsWith: .failure) {
            var history = ChannelHistory(floor: 10)
            history.append(try makeMessage(id: 10), limits: HistoryLimits(), now: 0)
        }
    }
}
