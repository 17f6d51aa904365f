using System.Globalization;

namespace Benchmarks;

/// <summary>What /proc says about a process the tool started: the CPU it has used and its resident memory.</summary>
public static class ProcessStats
{
    /// <summary>Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on every Linux architecture .NET runs on).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>User plus system CPU the process has used so far, in seconds (utime + stime in /proc/PID/stat).</summary>
    public static double CpuSeconds(int processId)
    {
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted after the last ')'.
        var stat = File.ReadAllText($"/proc/{processId}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

        // After the name, field 0 is the state (field 3 of the file); utime and stime are fields 14 and 15.
        var user = long.Parse(fields[11], CultureInfo.InvariantCulture);
        var system = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (user + system) / TicksPerSecond;
    }

    /// <summary>Resident memory of the process now, in bytes (VmRSS in /proc/PID/status).</summary>
    public static long ResidentBytes(int processId)
    {
        foreach (var line in File.ReadLines($"/proc/{processId}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:     123456 kB"
                var kilobytes = long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                return kilobytes * 1024;
            }
        }

        throw new InvalidOperationException($"No VmRSS for process {processId}.");
    }
}
