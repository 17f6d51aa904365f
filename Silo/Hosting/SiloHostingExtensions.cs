using Grains.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Dashboard;

namespace Silo.Hosting;

/// <summary>The standalone silo: the same grains, cluster settings and storage as the co-hosted one.</summary>
public static class SiloHostingExtensions
{
    /// <summary>Adds a silo configured by the <c>Cluster</c>, <c>Storage</c>, <c>ClientStore</c> and <c>Telemetry</c> sections.</summary>
    public static IHostApplicationBuilder AddStandaloneSilo(this IHostApplicationBuilder builder)
    {
        var contentRoot = builder.Environment.ContentRootPath;

        // Orleans' placement pipeline logs every grain call at Information through Polly.
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.AddClientManagement(builder.Configuration, contentRoot);

            // The dashboard's figures are collected on every silo; the frontends (clients) serve its page,
            // and so does the silo itself on Dashboard:Urls (SiloDashboardHosting).
            if (builder.Configuration.GetValue<bool>("Dashboard:Enabled"))
            {
                silo.AddDashboard();
            }
        });
        return builder.AddSiloTelemetry();
    }
}
