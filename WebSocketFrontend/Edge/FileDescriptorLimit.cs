using System.Globalization;

namespace WebSocketFrontend.Edge;

/// <summary>The process's open-file limit, from which the default connection cap is derived.</summary>
public static class FileDescriptorLimit
{
    /// <summary>The cap used where the limit cannot be read (not Linux, or no <c>/proc</c>).</summary>
    public const int FallbackMaxConnections = 10_000;

    /// <summary>Descriptors kept for everything that is not a client socket, at least.</summary>
    public const int MinimumReserve = 512;

    /// <summary>
    /// <c>soft − max(512, soft / 10)</c>, at least 64: each WebSocket holds one descriptor, and the
    /// reserve keeps room for storage connections, cluster sockets, HTTP requests (health, metrics,
    /// API) and the files the runtime opens. With the common limit of 20,000 this is 18,000.
    /// </summary>
    public static int DefaultMaxConnections(long? softLimit)
    {
        if (softLimit is not { } soft || soft <= 0)
        {
            return FallbackMaxConnections;
        }

        var reserve = Math.Max(MinimumReserve, soft / 10);
        return (int)Math.Clamp(soft - reserve, 64, 10_000_000);
    }

    /// <summary>The soft <c>RLIMIT_NOFILE</c> of this process (the .NET runtime raises it to the hard limit at start), or null.</summary>
    public static long? ReadSoftLimit()
    {
        const string limits = "/proc/self/limits";
        if (!OperatingSystem.IsLinux() || !File.Exists(limits))
        {
            return null;
        }

        try
        {
            return ParseSoftLimit(File.ReadLines(limits));
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The soft value of the "Max open files" line of a <c>/proc/&lt;pid&gt;/limits</c> text; null when absent or unlimited.</summary>
    public static long? ParseSoftLimit(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            if (!line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : null;
        }

        return null;
    }
}
