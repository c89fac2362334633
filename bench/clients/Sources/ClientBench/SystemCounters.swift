import Foundation

#if canImport(Glibc)
import Glibc
#endif

// What the benchmark reads from the system around each run. Linux only beyond `cpuSeconds`;
// elsewhere the extra columns read "?" / nan.

/// User + system CPU seconds of this process (all its threads).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// TCP connections this machine opened so far (`ActiveOpens` in /proc/net/snmp; nil elsewhere).
/// Nothing else on the machine opens many, so the difference over a run is the client's.
func tcpActiveOpens() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/net/snmp", encoding: .utf8) else { return nil }
    let rows = text.split(separator: "\n").filter { $0.hasPrefix("Tcp:") }.map { $0.split(separator: " ") }
    guard rows.count == 2, let column = rows[0].firstIndex(of: "ActiveOpens"), column < rows[1].count else { return nil }
    return Int(rows[1][column])
}

/// CPU seconds the machine spent running processes (user, nice and system in /proc/stat; not
/// the softirq time, where the kernel does most of loopback's TCP work and which no process is
/// charged with), and those used by process `pid` (utime + stime in /proc/<pid>/stat); nil where
/// there is no /proc. What the machine used beyond this process and the server is other work
/// sharing the cores: the run's noise.
func machineBusySeconds() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = text.split(separator: "\n").first else { return nil }
    let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard ticks.count >= 3 else { return nil }
    return (ticks[0] + ticks[1] + ticks[2]) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func processCPUSeconds(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = text.lastIndex(of: ")") else { return nil }
    // After the command name: state is field 3, utime and stime are fields 14 and 15.
    let fields = text[text.index(after: end)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
