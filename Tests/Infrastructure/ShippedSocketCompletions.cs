using System.Runtime.CompilerServices;
using WebSocketFrontend.Hosting;

namespace Tests.Infrastructure;

/// <summary>
/// The gateways these tests run in their own process get the socket completions of the embedded default
/// (<see cref="SocketCompletions"/>), as the entry point gives a gateway run by hand: the runtime reads its switch
/// once, at the process's first socket operation, so it is set before any test runs. Processes the tests start
/// do not inherit it (<see cref="HostProcess"/>): each decides by its own settings.
/// </summary>
internal static class ShippedSocketCompletions
{
    [ModuleInitializer]
    internal static void Set()
    {
        if (Environment.GetEnvironmentVariable(SocketCompletions.Variable) is null)
        {
            Environment.SetEnvironmentVariable(SocketCompletions.Variable, "1");
        }
    }
}
