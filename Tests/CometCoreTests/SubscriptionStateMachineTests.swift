import CometCore
import Testing

@Suite("SubscriptionStateMachine")
struct SubscriptionStateMachineTests {
    /// A message on `channel` with `id` (the payload names both, for readable failures).
    static func message(_ id: UInt64, on channel: String = "a") throws -> Message {
        try makeMessage(id: id, channel: channel, payload: "\(channel)#\(id)")
    }

    static func machine(_ channels: [String], cursor: [UInt64]? = nil, maxHeld: Int = 4096) throws -> SubscriptionStateMachine {
        SubscriptionStateMachine(
            channels: try channels.map(channel),
            cursor: cursor.map { Cursor(positions: $0) },
            maxHeld: maxHeld
        )
    }

    /// "channel#id" for each delivered message (its channel is the machine's channel at `channelIndex`).
    static func delivered(_ catchUp: SubscriptionStateMachine.CatchUp, _ machine: SubscriptionStateMachine) -> [String] {
        catchUp.messages.map { "\(machine.channels[$0.channelIndex].rawValue)#\($0.message.id)" }
    }

    static func delivered(_ catchUp: SubscriptionStateMachine.CatchUp) -> [String] {
        catchUp.messages.map { "\($0.message.channel.rawValue)#\($0.message.id)" }
    }

    // MARK: start

    @Test("a new machine is catching up at position 0")
    func initialState() throws {
        let machine = try Self.machine(["a", "b"])
        #expect(machine.isLive == false)
        #expect(machine.positions == [0, 0])
        #expect(machine.currentCursor == Cursor(positions: [0, 0]))
        #expect(machine.channels.map(\.rawValue) == ["a", "b"])
    }

    @Test("requested positions: none without a cursor, the cursor's when it matches, everything (0) when it does not")
    func requestedPositions() throws {
        let noCursor = try Self.machine(["a", "b"])
        #expect(noCursor.requestedPositions == nil)
        #expect(noCursor.cursorIsForOtherChannels == false)

        let matching = try Self.machine(["a", "b"], cursor: [5, 6])
        #expect(matching.requestedPositions == [5, 6])
        #expect(matching.cursorIsForOtherChannels == false)

        // A cursor for another set of channels asks for everything retained.
        let other = try Self.machine(["a", "b"], cursor: [5])
        #expect(other.requestedPositions == [0, 0])
        #expect(other.cursorIsForOtherChannels == true)

        let tooMany = try Self.machine(["a"], cursor: [1, 2, 3])
        #expect(tooMany.requestedPositions == [0])
        #expect(tooMany.cursorIsForOtherChannels == true)
    }

    @Test("live-only: the replay's heads become the positions")
    func liveOnly() throws {
        var machine = try Self.machine(["a", "b"])
        let catchUp = machine.replayed([ChannelReplay(head: 100), ChannelReplay(head: 200)])
        #expect(catchUp.messages.isEmpty)
        #expect(catchUp.gapChannels.isEmpty)
        #expect(machine.isLive)
        #expect(machine.positions == [100, 200])
        #expect(machine.currentCursor.description == "100.200")
    }

    // MARK: catch-up

    @Test("replayed messages after the cursor are delivered in order")
    func replayAfterCursor() throws {
        var machine = try Self.machine(["a"], cursor: [10])
        let replay = ChannelReplay(head: 13, messages: try [11, 12, 13].map { try Self.message($0) })
        let catchUp = machine.replayed([replay])
        #expect(Self.delivered(catchUp, machine) == ["a#11", "a#12", "a#13"])
        #expect(catchUp.gapChannels.isEmpty)
        #expect(machine.positions == [13])
    }

    @Test("replayed messages at or below the cursor are not delivered again")
    func replayDedupesAgainstCursor() throws {
        var machine = try Self.machine(["a"], cursor: [12])
        let replay = ChannelReplay(head: 14, messages: try [11, 12, 13, 14].map { try Self.message($0) })
        let catchUp = machine.replayed([replay])
        #expect(Self.delivered(catchUp) == ["a#13", "a#14"])
        #expect(machine.positions == [14])
    }

    @Test("live messages held while catching up are delivered after the replay, without duplicates")
    func heldMessagesAfterReplay() throws {
        var machine = try Self.machine(["a"], cursor: [10])
        // Live messages 12, 13 and 14 arrive before the replay (which already has 11 to 13).
        for id in [12, 13, 14] as [UInt64] {
            #expect(machine.receive(try Self.message(id), channelIndex: 0) == .none)
        }
        #expect(machine.isLive == false)
        let replay = ChannelReplay(head: 13, messages: try [11, 12, 13].map { try Self.message($0) })
        let catchUp = machine.replayed([replay])
        #expect(Self.delivered(catchUp) == ["a#11", "a#12", "a#13", "a#14"])
        #expect(machine.positions == [14])
        // Later live messages are delivered once.
        #expect(machine.receive(try Self.message(14), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(15), channelIndex: 0) == .deliver)
        #expect(machine.positions == [15])
    }

    @Test("held messages at or below the head are dropped for a live-only subscription")
    func heldBelowHead() throws {
        var machine = try Self.machine(["a"])
        #expect(machine.receive(try Self.message(50), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(51), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(51), channelIndex: 0) == .none)  // duplicate fan-out
        let catchUp = machine.replayed([ChannelReplay(head: 50)])
        #expect(Self.delivered(catchUp) == ["a#51"])
        #expect(machine.positions == [51])
    }

    @Test("the head raises the position past the last replayed message")
    func headAboveMessages() throws {
        var machine = try Self.machine(["a"], cursor: [1])
        let catchUp = machine.replayed([ChannelReplay(head: 100, messages: [try Self.message(2)])])
        #expect(Self.delivered(catchUp) == ["a#2"])
        #expect(machine.positions == [100])
    }

    @Test("gap channels are reported, and a gap replay delivers every retained message")
    func gapChannels() throws {
        var machine = try Self.machine(["a", "b"], cursor: [5, 500])
        let catchUp = machine.replayed([
            ChannelReplay(head: 30, messages: try [20, 30].map { try Self.message($0, on: "a") }, gap: true),
            // A cursor from the future: the replay is a gap with every retained message, even below the cursor.
            ChannelReplay(head: 40, messages: try [25, 40].map { try Self.message($0, on: "b") }, gap: true),
        ])
        #expect(catchUp.gapChannels.map(\.rawValue) == ["a", "b"])
        #expect(Self.delivered(catchUp, machine) == ["a#20", "b#25", "a#30", "b#40"])
        #expect(machine.positions == [30, 40])
    }

    @Test("only the channels whose replay is a gap are reported")
    func someGapChannels() throws {
        var machine = try Self.machine(["a", "b", "c"], cursor: [1, 1, 1])
        let catchUp = machine.replayed([
            ChannelReplay(head: 1),
            ChannelReplay(head: 9, messages: [try Self.message(9, on: "b")], gap: true),
            ChannelReplay(head: 1),
        ])
        #expect(catchUp.gapChannels.map(\.rawValue) == ["b"])
        #expect(Self.delivered(catchUp, machine) == ["b#9"])
    }

    @Test("a cursor for another channel count makes every channel a gap and replays everything retained")
    func cursorForOtherChannels() throws {
        var machine = try Self.machine(["a", "b"], cursor: [5])
        // Even a replay the broker did not flag as a gap is one: the cursor says nothing about these channels.
        let catchUp = machine.replayed([
            ChannelReplay(head: 10, messages: try [3, 10].map { try Self.message($0, on: "a") }),
            ChannelReplay(head: 20, messages: [], gap: true),
        ])
        #expect(catchUp.gapChannels.map(\.rawValue) == ["a", "b"])
        #expect(Self.delivered(catchUp, machine) == ["a#3", "a#10"])
        #expect(machine.positions == [10, 20])
        #expect(machine.isLive)
    }

    @Test("a cursor for another channel count: held live messages still follow without duplicates")
    func cursorForOtherChannelsWithHeld() throws {
        var machine = try Self.machine(["a"], cursor: [1, 2])
        #expect(machine.receive(try Self.message(10), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(11), channelIndex: 0) == .none)
        let catchUp = machine.replayed([ChannelReplay(head: 10, messages: try [9, 10].map { try Self.message($0) })])
        #expect(catchUp.gapChannels.map(\.rawValue) == ["a"])
        #expect(Self.delivered(catchUp) == ["a#9", "a#10", "a#11"])
    }

    @Test("multi-channel catch-up is interleaved by id, each channel in order")
    func interleavedByID() throws {
        var machine = try Self.machine(["a", "b", "c"], cursor: [0, 0, 0])
        let catchUp = machine.replayed([
            ChannelReplay(head: 6, messages: try [1, 4, 6].map { try Self.message($0, on: "a") }),
            ChannelReplay(head: 5, messages: try [2, 3, 5].map { try Self.message($0, on: "b") }),
            ChannelReplay(head: 7, messages: try [7].map { try Self.message($0, on: "c") }),
        ])
        #expect(Self.delivered(catchUp, machine) == ["a#1", "b#2", "b#3", "a#4", "b#5", "a#6", "c#7"])
        // Every delivered message is tagged with its own channel.
        for (message, index) in catchUp.messages {
            #expect(machine.channels[index] == message.channel)
        }
        #expect(machine.positions == [6, 5, 7])
        #expect(machine.currentCursor.description == "6.5.7")
    }

    @Test("equal ids on two channels keep channel order")
    func equalIDsAcrossChannels() throws {
        var machine = try Self.machine(["a", "b"], cursor: [0, 0])
        let catchUp = machine.replayed([
            ChannelReplay(head: 2, messages: try [1, 2].map { try Self.message($0, on: "a") }),
            ChannelReplay(head: 2, messages: try [1, 2].map { try Self.message($0, on: "b") }),
        ])
        #expect(Self.delivered(catchUp, machine) == ["a#1", "b#1", "a#2", "b#2"])
    }

    @Test("held messages for several channels follow the interleaved replay, deduplicated per channel")
    func heldAcrossChannels() throws {
        var machine = try Self.machine(["a", "b"], cursor: [10, 20])
        #expect(machine.receive(try Self.message(22, on: "b"), channelIndex: 1) == .none)
        #expect(machine.receive(try Self.message(12, on: "a"), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(23, on: "b"), channelIndex: 1) == .none)
        let catchUp = machine.replayed([
            ChannelReplay(head: 11, messages: [try Self.message(11, on: "a")]),
            ChannelReplay(head: 22, messages: try [21, 22].map { try Self.message($0, on: "b") }),
        ])
        #expect(Self.delivered(catchUp, machine) == ["a#11", "b#21", "b#22", "a#12", "b#23"])
        #expect(machine.positions == [12, 23])
    }

    // MARK: live

    @Test("live delivery deduplicates at or below the position")
    func liveDedupe() throws {
        var machine = try Self.machine(["a", "b"])
        _ = machine.replayed([ChannelReplay(head: 10), ChannelReplay(head: 20)])
        #expect(machine.receive(try Self.message(10, on: "a"), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(9, on: "a"), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(11, on: "a"), channelIndex: 0) == .deliver)
        #expect(machine.receive(try Self.message(11, on: "a"), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(15, on: "b"), channelIndex: 1) == .none)
        #expect(machine.receive(try Self.message(21, on: "b"), channelIndex: 1) == .deliver)
        #expect(machine.positions == [11, 21])
    }

    @Test("currentCursor advances with every delivery and round-trips through its text")
    func currentCursorAdvances() throws {
        var machine = try Self.machine(["a", "b"], cursor: [1, 2])
        _ = machine.replayed([ChannelReplay(head: 1), ChannelReplay(head: 2)])
        #expect(machine.currentCursor == Cursor(positions: [1, 2]))
        #expect(machine.receive(try Self.message(5, on: "b"), channelIndex: 1) == .deliver)
        #expect(machine.currentCursor == Cursor(positions: [1, 5]))
        #expect(machine.receive(try Self.message(3, on: "a"), channelIndex: 0) == .deliver)
        #expect(machine.currentCursor == Cursor(positions: [3, 5]))
        #expect(try Cursor(parsing: machine.currentCursor.description) == Cursor(positions: [3, 5]))
    }

    // MARK: overflow and close

    @Test("holding more than maxHeld messages while catching up is an overflow that closes the machine")
    func heldOverflow() throws {
        var machine = try Self.machine(["a"], cursor: [0], maxHeld: 2)
        #expect(machine.receive(try Self.message(1), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(2), channelIndex: 0) == .none)
        #expect(machine.receive(try Self.message(3), channelIndex: 0) == .overflow)
        // Closed: nothing more is delivered, and the replay is ignored.
        #expect(machine.receive(try Self.message(4), channelIndex: 0) == .none)
        let catchUp = machine.replayed([ChannelReplay(head: 4, messages: try [1, 2, 3, 4].map { try Self.message($0) })])
        #expect(catchUp.messages.isEmpty)
        #expect(catchUp.gapChannels.isEmpty)
        #expect(machine.isLive == false)
    }

    @Test("maxHeld 0 overflows on the first live message before the replay")
    func zeroMaxHeld() throws {
        var machine = try Self.machine(["a"], maxHeld: 0)
        #expect(machine.receive(try Self.message(1), channelIndex: 0) == .overflow)
    }

    @Test("after close nothing is delivered")
    func closeWhenLive() throws {
        var machine = try Self.machine(["a"])
        _ = machine.replayed([ChannelReplay(head: 1)])
        #expect(machine.receive(try Self.message(2), channelIndex: 0) == .deliver)
        machine.close()
        #expect(machine.isLive == false)
        #expect(machine.receive(try Self.message(3), channelIndex: 0) == .none)
        #expect(machine.positions == [2])
    }

    @Test("closing while catching up drops the held messages and ignores the replay")
    func closeWhileCatchingUp() throws {
        var machine = try Self.machine(["a"], cursor: [0])
        #expect(machine.receive(try Self.message(1), channelIndex: 0) == .none)
        machine.close()
        let catchUp = machine.replayed([ChannelReplay(head: 1, messages: [try Self.message(1)])])
        #expect(catchUp.messages.isEmpty)
        #expect(machine.isLive == false)
        #expect(machine.receive(try Self.message(2), channelIndex: 0) == .none)
    }

    @Test("a second replay is ignored")
    func secondReplay() throws {
        var machine = try Self.machine(["a"], cursor: [0])
        _ = machine.replayed([ChannelReplay(head: 1, messages: [try Self.message(1)])])
        let again = machine.replayed([ChannelReplay(head: 3, messages: try [2, 3].map { try Self.message($0) }, gap: true)])
        #expect(again.messages.isEmpty)
        #expect(again.gapChannels.isEmpty)
        #expect(machine.positions == [1])
    }

    @Test("a replay without one entry per channel (a broker's mistake) is a gap on every channel, not a crash")
    func malformedReplay() throws {
        var machine = try Self.machine(["a", "b"], cursor: [5, 6])
        let catchUp = machine.replayed([ChannelReplay(head: 9)])
        #expect(catchUp.gapChannels.map(\.rawValue) == ["a", "b"])
        #expect(catchUp.messages.isEmpty)
        #expect(machine.isLive)
    }
}
