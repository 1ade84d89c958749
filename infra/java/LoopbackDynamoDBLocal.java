import java.io.IOException;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local with its HTTP connector bound to 127.0.0.1 only (the jar has no host option), and stops it
 * when its launcher is gone: the launcher holds the other end of standard input and never writes to it, so end of
 * file means the launcher ended, even killed with SIGKILL.
 */
public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        Thread launcherWatch = new Thread(LoopbackDynamoDBLocal::exitWhenLauncherGone, "launcher-watch");
        launcherWatch.setDaemon(true);
        launcherWatch.start();
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        for (Connector connector : jetty.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
        proxy.join();
    }

    private static void exitWhenLauncherGone() {
        try {
            while (System.in.read() != -1) {
                // the launcher never writes: whatever arrives is ignored
            }
        } catch (IOException closed) {
            // a broken pipe means the same as end of file
        }
        System.exit(0);
    }
}
