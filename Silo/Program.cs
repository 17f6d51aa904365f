using Microsoft.Extensions.Hosting;
using Silo.Hosting;

// A generic host, or a web host serving only /dashboard when Dashboard:Enabled is set.
SiloDashboardHosting.BuildSilo(args).Run();
