import CometTestSupport
import Testing

/// The fan-out hot path in process: every subscriber gets every message, with one flush per message.
@Suite("Fan-out (in process)")
struct FanOutTests {
    @Test("One publish reaches every subscriber of every transport, one write and one flush each", arguments: ["sse", "stream"])
    func fanOut(transport: String) throws {
        let fixture = try FanOutFixture(subscribers: 100, transport: transport)
        let start = fixture.bytesPerConnection
        let startFlushes = fixture.flushesPerConnection
        #expect(Set(start).count == 1 && start[0] > 0, "every connection got the same response start")
        for _ in 0..<3 {
            #expect(fixture.publish() == 100)
        }
        let perMessage = zip(fixture.bytesPerConnection, start).map { ($0 - $1) / 3 }
        #expect(Set(perMessage).count == 1 && perMessage[0] > 128, "same bytes to everyone")
        #expect(zip(fixture.flushesPerConnection, startFlushes).allSatisfy { $0 - $1 == 3 })
    }
}
