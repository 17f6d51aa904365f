using Grains.Hosting;

namespace WebSocketFrontend.Hosting;

/// <summary>
/// <c>Sockets:InlineCompletions</c>: whether the runtime finishes socket operations on its I/O thread instead of
/// handing each completion to the thread pool (the runtime's <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c>).
/// What then runs on the I/O thread is Kestrel's transport loop up to its pipes, which never blocks; the
/// application's code still runs on the thread pool. One hop fewer for every read and write of every socket.
/// On by default for the embedded default (a co-hosted silo on SQLite), where no database driver's socket
/// shares that thread; off by default where the process talks to a database server, whose driver's code
/// would run on it, and where it has not been measured.
/// </summary>
public static class SocketCompletions
{
    /// <summary>The configuration key.</summary>
    public const string Key = "Sockets:InlineCompletions";

    /// <summary>The runtime's switch; read once, at the process's first asynchronous socket operation.</summary>
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>What the settings ask for: the key when set, otherwise on for the embedded default only.</summary>
    public static bool Wanted(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration[Key] is { Length: > 0 } set)
        {
            return bool.TryParse(set, out var wanted)
                ? wanted
                : throw new InvalidOperationException($"{Key} must be true or false, not '{set}'.");
        }

        var storage = configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        return storage.Provider == StorageProvider.Sqlite && ClusterMembership.Resolve(configuration).Database is null;
    }

    /// <summary>
    /// Sets the runtime's switch for this process when the settings want it and the environment does not say
    /// otherwise (a variable already set wins). Must run before the process's first socket operation: the
    /// entry point calls it between building the application and running it.
    /// </summary>
    public static void Apply(IConfiguration configuration) =>
        Apply(configuration, Environment.GetEnvironmentVariable, Environment.SetEnvironmentVariable);

    /// <summary><see cref="Apply(IConfiguration)"/> on the given environment.</summary>
    public static void Apply(IConfiguration configuration, Func<string, string?> read, Action<string, string> write)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(write);
        if (read(Variable) is null && Wanted(configuration))
        {
            write(Variable, "1");
        }
    }
}
