using Grains.Hosting;
using Microsoft.Extensions.Hosting;
using Silo.Hosting;

// appsettings.json and relative paths are found next to the silo, wherever it is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = ContentRoot.Resolve(args) });
builder.AddStandaloneSilo();
builder.Build().Run();
