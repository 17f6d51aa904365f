using System.Net;
using System.Net.Sockets;

namespace Tests.Infrastructure;

/// <summary>Loopback ports that were free a moment ago, for silo and gateway endpoints.</summary>
public static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
