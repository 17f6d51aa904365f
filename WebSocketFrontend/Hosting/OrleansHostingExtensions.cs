using Grains.Hosting;

namespace WebSocketFrontend.Hosting;

/// <summary>Puts the Orleans side of the gateway into the web host.</summary>
public static class OrleansHostingExtensions
{
    /// <summary>
    /// Co-hosts a silo with localhost clustering and the client store (SQLite under <c>data/</c> by
    /// default), so that one command gives a working server.
    /// </summary>
    public static WebApplicationBuilder AddGatewayCluster(this WebApplicationBuilder builder)
    {
        var contentRoot = builder.Environment.ContentRootPath;
        builder.UseOrleans(silo => silo.AddClientManagement(builder.Configuration, contentRoot));
        return builder;
    }
}
