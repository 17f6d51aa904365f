using Grains.Hosting;
using Grains.Storage;
using Orleans.Configuration;
using Orleans.Dashboard;

namespace WebSocketFrontend.Hosting;

/// <summary>Puts the Orleans side of the gateway into the web host.</summary>
public static class OrleansHostingExtensions
{
    /// <summary>
    /// With localhost clustering (the default), co-hosts a silo with the client store (SQLite under
    /// <c>data/</c> by default), so that one command gives a working server. With
    /// <c>Cluster:Clustering=AdoNet</c>, becomes a pure client of a Silo cluster instead.
    /// </summary>
    public static WebApplicationBuilder AddGatewayCluster(this WebApplicationBuilder builder)
    {
        var membership = ClusterMembership.Resolve(builder.Configuration);
        if (membership.Database is { } database)
        {
            return builder.AddClusterClient(membership.Settings, database);
        }

        var contentRoot = builder.Environment.ContentRootPath;
        builder.UseOrleans(silo =>
        {
            silo.AddClientManagement(builder.Configuration, contentRoot);
            if (DashboardSettings.IsEnabled(builder.Configuration))
            {
                silo.AddDashboard();
            }
        });
        return builder;
    }

    /// <summary>
    /// An Orleans client that finds the gateways in the membership table. It connects in the
    /// background and keeps trying while no silo is up, so the frontend serves from the start:
    /// until the first connection, every grain call fails at once and requests are answered
    /// <c>unavailable</c>.
    /// </summary>
    private static WebApplicationBuilder AddClusterClient(this WebApplicationBuilder builder, ClusterSettings cluster, StorageDatabase database)
    {
        var hostedBefore = builder.Services.Where(d => d.ServiceType == typeof(IHostedService)).ToHashSet();
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(o =>
            {
                o.ServiceId = cluster.ServiceId;
                o.ClusterId = cluster.ClusterId;
            });
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = database.Invariant;
                o.ConnectionString = database.ConnectionString;
            });
            // A request lost with a killed silo gets no answer: it is answered unavailable after this, not Orleans' 30 s.
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = cluster.ResponseTimeout);
            client.UseConnectionRetryFilter<KeepConnecting>();
            client.AddOutgoingGrainCallFilter<FailFastWhileDisconnected>();
            if (DashboardSettings.IsEnabled(builder.Configuration))
            {
                // The silos collect the figures (Dashboard:Enabled on each silo); the frontend shows them.
                client.AddDashboard();
            }

            // A request's trace goes on through the grain calls it makes.
            if (TelemetryOptions.From(builder.Configuration).TracesOn)
            {
                client.AddActivityPropagation();
            }
        });

        // Orleans starts its client as a hosted service whose start waits until a gateway answers,
        // which would hold Kestrel back for as long as no silo runs. ClusterConnection starts that
        // same client in the background instead.
        var orleansHosted = builder.Services.Where(d => d.ServiceType == typeof(IHostedService) && !hostedBefore.Contains(d)).ToList();
        if (orleansHosted.Count != 1)
        {
            throw new InvalidOperationException($"Expected the Orleans client to add one hosted service, found {orleansHosted.Count}.");
        }

        builder.Services.Remove(orleansHosted[0]);
        builder.Services.AddSingleton<ClusterConnectionState>();
        builder.Services.AddHostedService<ClusterConnection>();
        return builder;
    }
}
