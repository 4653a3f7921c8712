import Foundation
import NIOCore
import NIOPosix

/// A real `redis-server` on a loopback port of its own, for the duration of a test (never a mock). Needs the
/// `redis-server` binary (Debian: `redis-server`; `scripts/test.sh` installs it). Persistence is off.
public final class RedisServer: @unchecked Sendable {  // the process is touched only by start/stop, in order
    public let port: Int
    public let password: String?
    private var pid: pid_t?

    /// `redis://127.0.0.1:PORT` (with the password, when there is one).
    public var url: String {
        if let password { return "redis://:\(password)@127.0.0.1:\(self.port)" }
        return "redis://127.0.0.1:\(self.port)"
    }

    private init(port: Int, password: String?) {
        self.port = port
        self.password = password
    }

    /// Starts a server on a free loopback port and waits until it answers.
    public static func start(password: String? = nil) async throws -> RedisServer {
        let server = RedisServer(port: try freePort(), password: password)
        try await server.start()
        return server
    }

    /// Starts the server (again, after ``stop()``: same port, empty data).
    public func start() async throws {
        var arguments = [Self.binary, "--port", String(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                         "no", "--daemonize", "no", "--loglevel", "warning", "--logfile", "/dev/null"]
        if let password { arguments += ["--requirepass", password] }
        self.pid = try Self.spawn(arguments)
        for _ in 0..<200 {
            if Self.answers(port: self.port) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw RedisServerError.notStarted
    }

    /// Stops the server (SIGKILL, as a crash would) and waits until it is gone.
    public func stop() async {
        guard let pid = self.pid else { return }
        self.pid = nil
        kill(pid, SIGKILL)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
                done.resume()
            }
        }
    }

    /// Starts `arguments` with the default signal mask and handlers (the test process blocks some signals, and a
    /// child would inherit that) and no stdin; its output is discarded.
    private static func spawn(_ arguments: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        var cArguments = arguments.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, &cArguments, environ)
        guard result == 0 else { throw RedisServerError.noBinary }
        return pid
    }

    public enum RedisServerError: Error {
        case notStarted
        case noBinary
    }

    private static var binary: String {
        for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        return "redis-server"
    }

    /// Whether something accepts connections on the port.
    private static func answers(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// A port nothing listens on now (the system's choice).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw RedisServerError.notStarted }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
