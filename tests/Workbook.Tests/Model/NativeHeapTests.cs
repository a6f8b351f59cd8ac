using Workbook.Model;

namespace Workbook.Tests.Model;

public class NativeHeapTests
{
    [Fact]
    public void SystemLeavesTheHeapAloneAndSaysSo()
    {
        var setting = NativeHeap.Apply("system");
        Assert.False(setting.Applied);
        Assert.Contains(NativeHeap.EnvironmentVariable, setting.Description);
    }

    [Theory]
    [InlineData("mmap")]
    [InlineData("1")]
    public void AnUnknownChoiceIsOneLineNamingTheVariable(string choice)
    {
        var e = Assert.Throws<ArgumentException>(() => NativeHeap.Apply(choice));
        Assert.Contains(NativeHeap.EnvironmentVariable, e.Message);
        Assert.Contains($"'{choice}'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void TheDefaultAppliesOnLinuxWithGlibc()
    {
        var setting = NativeHeap.Apply(null);
        // This project's CI and development machines are Debian (glibc); elsewhere the description says why not.
        if (OperatingSystem.IsLinux() && File.Exists("/lib/x86_64-linux-gnu/libc.so.6"))
            Assert.True(setting.Applied, setting.Description);
        else
            Assert.False(setting.Applied);
    }
}
