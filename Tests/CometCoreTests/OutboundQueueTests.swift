import CometCore
import NIOCore
import Testing

@Suite("OutboundQueue")
struct OutboundQueueTests {
    static func buffer(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

    static func texts(_ buffers: [ByteBuffer]?) -> [String]? {
        buffers.map { $0.map(text) }
    }

    @Test("writes pass straight through while the channel is writable")
    func passThrough() {
        var queue = OutboundQueue(maxBytes: 4)
        #expect(queue.maxBytes == 4)
        for _ in 0..<10 {
            // Larger than maxBytes, repeatedly: nothing is held, so nothing counts against the bound.
            #expect(queue.enqueue(Self.buffer("0123456789"), channelWritable: true) == .write)
        }
        #expect(queue.heldBytes == 0)
        #expect(queue.writabilityChanged(true) == nil)
    }

    @Test("tracked writability: the initial state, then writabilityChanged, decide without a per-write query")
    func trackedWritability() {
        var queue = OutboundQueue(maxBytes: 100, writable: false)
        #expect(queue.enqueue(Self.buffer("one")) == .held, "created on an unwritable channel")
        #expect(Self.texts(queue.writabilityChanged(true)) == ["one"])
        #expect(queue.enqueue(Self.buffer("two")) == .write)
        #expect(queue.writabilityChanged(false) == nil)
        #expect(queue.enqueue(Self.buffer("three")) == .held)
        #expect(queue.heldBytes == 5)
    }

    @Test("takeAll hands over what is held, in order, while the channel is still not writable")
    func takeAllWhileUnwritable() {
        var queue = OutboundQueue(maxBytes: 100, writable: false)
        #expect(queue.takeAll().isEmpty)
        #expect(queue.enqueue(Self.buffer("one")) == .held)
        #expect(queue.enqueue(Self.buffer("two")) == .held)
        #expect(Self.texts(queue.takeAll()) == ["one", "two"])
        #expect(queue.heldBytes == 0)
        #expect(queue.takeAll().isEmpty, "taken once")
        #expect(queue.enqueue(Self.buffer("three")) == .held, "still not writable: later writes are held again")
    }

    @Test("writes are held while the channel is not writable")
    func holdsWhenNotWritable() {
        var queue = OutboundQueue(maxBytes: 100)
        #expect(queue.enqueue(Self.buffer("one"), channelWritable: false) == .held)
        #expect(queue.heldBytes == 3)
        // The channel reports writable, but earlier buffers are held: this one must queue behind them.
        #expect(queue.enqueue(Self.buffer("two!"), channelWritable: true) == .held)
        #expect(queue.heldBytes == 7)
    }

    @Test("writability restored returns the held buffers in order and resets the queue")
    func drainsInOrder() {
        var queue = OutboundQueue(maxBytes: 100)
        let parts = ["a", "bb", "ccc", "", "dddd"]
        for part in parts {
            #expect(queue.enqueue(Self.buffer(part), channelWritable: false) == .held)
        }
        #expect(queue.heldBytes == 10)
        #expect(Self.texts(queue.writabilityChanged(true)) == parts)
        #expect(queue.heldBytes == 0)
        // Nothing left to drain, and new writes pass through again.
        #expect(queue.writabilityChanged(true) == nil)
        #expect(queue.enqueue(Self.buffer("next"), channelWritable: true) == .write)
    }

    @Test("losing writability holds later writes even if the caller still sees the channel writable")
    func writabilityLost() {
        var queue = OutboundQueue(maxBytes: 100)
        #expect(queue.writabilityChanged(false) == nil)
        #expect(queue.enqueue(Self.buffer("x"), channelWritable: true) == .held)
        #expect(queue.writabilityChanged(false) == nil, "nothing is drained while not writable")
        #expect(queue.heldBytes == 1)
        #expect(Self.texts(queue.writabilityChanged(true)) == ["x"])
    }

    @Test("past maxBytes the queue overflows and keeps what it held")
    func overflow() {
        var queue = OutboundQueue(maxBytes: 10)
        #expect(queue.enqueue(Self.buffer("123456"), channelWritable: false) == .held)
        #expect(queue.enqueue(Self.buffer("12345"), channelWritable: false) == .overflow)
        #expect(queue.heldBytes == 6)
        #expect(Self.texts(queue.writabilityChanged(true)) == ["123456"])
    }

    @Test("exactly maxBytes held is not an overflow; one byte more is")
    func overflowBoundary() {
        var queue = OutboundQueue(maxBytes: 10)
        #expect(queue.enqueue(Self.buffer("12345"), channelWritable: false) == .held)
        #expect(queue.enqueue(Self.buffer("67890"), channelWritable: false) == .held)
        #expect(queue.heldBytes == 10)
        #expect(queue.enqueue(Self.buffer("!"), channelWritable: false) == .overflow)
        #expect(queue.enqueue(Self.buffer(""), channelWritable: false) == .held)
    }

    @Test("a single buffer larger than maxBytes overflows when it must be held")
    func hugeBuffer() {
        var queue = OutboundQueue(maxBytes: 4096)
        #expect(queue.enqueue(ByteBuffer(repeating: 0x61, count: 4097), channelWritable: false) == .overflow)
        #expect(queue.heldBytes == 0)
    }

    @Test("maxBytes 0 tolerates no held bytes")
    func zeroBound() {
        var queue = OutboundQueue(maxBytes: 0)
        #expect(queue.enqueue(Self.buffer("x"), channelWritable: true) == .write)
        #expect(queue.enqueue(Self.buffer("x"), channelWritable: false) == .overflow)
    }

    @Test("hold, drain, hold again: each drain returns only what was held since the last one")
    func repeatedCycles() {
        var queue = OutboundQueue(maxBytes: 100)
        #expect(queue.enqueue(Self.buffer("1"), channelWritable: false) == .held)
        #expect(Self.texts(queue.writabilityChanged(true)) == ["1"])
        #expect(queue.enqueue(Self.buffer("2"), channelWritable: true) == .write)
        #expect(queue.enqueue(Self.buffer("3"), channelWritable: false) == .held)
        #expect(queue.enqueue(Self.buffer("4"), channelWritable: true) == .held)
        #expect(Self.texts(queue.writabilityChanged(true)) == ["3", "4"])
        #expect(queue.heldBytes == 0)
    }

    @Test("held buffers are returned intact, reader index included")
    func buffersIntact() {
        var queue = OutboundQueue(maxBytes: 100)
        var sliced = ByteBuffer(string: "skip|keep")
        sliced.moveReaderIndex(forwardBy: 5)
        #expect(queue.enqueue(sliced, channelWritable: false) == .held)
        #expect(queue.heldBytes == 4)
        #expect(Self.texts(queue.writabilityChanged(true)) == ["keep"])
    }
}
