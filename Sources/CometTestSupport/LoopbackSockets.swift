#if canImport(Glibc)
import Glibc

/// Plain IPv4 loopback sockets, for tests that look below SwiftNIO (socket options, the gateway's descriptors).
///
/// Addresses are handled as bytes: the layout of `sockaddr_in` is fixed (the family in host order, then the port
/// and the address in network order), and this keeps the C structure's members, which Glibc and SwiftNIO's C
/// modules both declare, out of the callers' files.
public enum LoopbackSockets {
    /// A blocking TCP socket connected to 127.0.0.1:`port`, or nil.
    public static func connect(port: Int) -> CInt? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = [UInt8](repeating: 0, count: 16)
        address.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_INET), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: UInt16(port).bigEndian, toByteOffset: 2, as: UInt16.self)
        }
        address[4] = 127
        address[7] = 1
        let status = address.withUnsafeMutableBytes { raw in
            Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard status == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// The local (or, with `peer`, the remote) TCP port of `fd`, or nil when it is not a connected IPv4 socket.
    public static func port(of fd: CInt, peer: Bool) -> Int? {
        var bytes = [UInt8](repeating: 0, count: 128)
        var length = socklen_t(bytes.count)
        return bytes.withUnsafeMutableBytes { raw -> Int? in
            let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr.self)
            let status = peer ? getpeername(fd, address, &length) : getsockname(fd, address, &length)
            guard status == 0, length >= 16, raw.load(fromByteOffset: 0, as: UInt16.self) == UInt16(AF_INET) else {
                return nil
            }
            return Int(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        }
    }
}
#endif
