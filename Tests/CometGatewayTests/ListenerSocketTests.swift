import CometTestSupport
import Foundation
import Testing

@testable import CometGateway

#if canImport(Glibc)
import Glibc

/// The sockets the listeners accept: their options, which the gateway sets once on the listening socket (inherited on
/// Linux) rather than per connection.
@Suite("Accepted sockets")
struct ListenerSocketTests {
    @Test("A connection the public listener accepted has TCP_NODELAY on")
    func acceptedSocketHasNoDelay() async throws {
        try await LiveGateway.withGateway { live in
            // A plain client socket: its local port identifies the gateway's side of the connection.
            let client = try #require(LoopbackSockets.connect(port: live.publicPort))
            defer { close(client) }
            let clientPort = LoopbackSockets.port(of: client, peer: false)

            // The gateway runs in this process: find its descriptor for this connection (its peer is the client).
            var serverSide: CInt?
            for _ in 0..<200 where serverSide == nil {
                serverSide = (3..<4096).first { fd in
                    LoopbackSockets.port(of: fd, peer: true) == clientPort && LoopbackSockets.port(of: fd, peer: false) == live.publicPort
                }
                if serverSide == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let fd = try #require(serverSide, "the gateway accepted the connection")
            var value: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            #expect(getsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &value, &length) == 0)
            #expect(value != 0)
        }
    }
}
#endif
