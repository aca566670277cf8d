// The prod stack of wwhd-infra (Pulumi.prod.yaml) written as an AWS CDK v2 app: the same
// architecture, sizes and safety settings, so that synthesizing and checking it is the work a
// CDK team's check does for the same system. It is a speed anchor, never deployed: the account,
// hosted zone and e-mail are the placeholders the prod stack file uses.
//
// Left out on purpose: WAF (not in the Pulumi stack either). Kept although nothing mounts it:
// the EFS file system that prod retains while Qdrant's data moves to the EBS volume.
"use strict";

const cdk = require("aws-cdk-lib");
const acm = require("aws-cdk-lib/aws-certificatemanager");
const autoscaling = require("aws-cdk-lib/aws-autoscaling");
const backup = require("aws-cdk-lib/aws-backup");
const cloudwatch = require("aws-cdk-lib/aws-cloudwatch");
const cwActions = require("aws-cdk-lib/aws-cloudwatch-actions");
const ec2 = require("aws-cdk-lib/aws-ec2");
const ecr = require("aws-cdk-lib/aws-ecr");
const ecs = require("aws-cdk-lib/aws-ecs");
const efs = require("aws-cdk-lib/aws-efs");
const elbv2 = require("aws-cdk-lib/aws-elasticloadbalancingv2");
const events = require("aws-cdk-lib/aws-events");
const iam = require("aws-cdk-lib/aws-iam");
const kms = require("aws-cdk-lib/aws-kms");
const logs = require("aws-cdk-lib/aws-logs");
const rds = require("aws-cdk-lib/aws-rds");
const route53 = require("aws-cdk-lib/aws-route53");
const route53Targets = require("aws-cdk-lib/aws-route53-targets");
const s3 = require("aws-cdk-lib/aws-s3");
const secretsmanager = require("aws-cdk-lib/aws-secretsmanager");
const servicediscovery = require("aws-cdk-lib/aws-servicediscovery");
const sns = require("aws-cdk-lib/aws-sns");
const subscriptions = require("aws-cdk-lib/aws-sns-subscriptions");
const ssm = require("aws-cdk-lib/aws-ssm");
const xray = require("aws-cdk-lib/aws-xray");

const ENV = { account: "123456789012", region: "us-west-2" };
const AZS = ["us-west-2a", "us-west-2b"];
const DOMAIN = "api.wwhd.ai";
const HOSTED_ZONE = { hostedZoneId: "Z0123456789ABCDEFGHIJ", zoneName: "wwhd.ai" };
const ALARM_EMAIL = "oncall@wwhd.ai";
const API_PORT = 8000;
const QDRANT_PORT = 6333;
const RETENTION = logs.RetentionDays.ONE_MONTH;

class WwhdProdStack extends cdk.Stack {
  constructor(scope, id, props) {
    super(scope, id, props);
    cdk.Tags.of(this).add("Project", "wwhd");
    cdk.Tags.of(this).add("Environment", "prod");
    cdk.Tags.of(this).add("CostCenter", "wwhd-prod");

    const key = new kms.Key(this, "StackKey", {
      alias: "alias/wwhd-prod",
      enableKeyRotation: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts with the key only when the key policy lets the service use it.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        principals: [new iam.ServicePrincipal(`logs.${ENV.region}.amazonaws.com`)],
        resources: ["*"],
      }),
    );
    const logGroup = (name, logGroupName, retention = RETENTION) =>
      new logs.LogGroup(this, name, { logGroupName, retention, encryptionKey: key });

    // --- network: 2 AZs, public / private / isolated subnets, one NAT gateway, flow logs
    const vpc = new ec2.Vpc(this, "Vpc", {
      ipAddresses: ec2.IpAddresses.cidr("10.0.0.0/16"),
      availabilityZones: AZS,
      natGateways: 1,
      subnetConfiguration: [
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "private", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: "isolated", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: { s3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    vpc.addFlowLog("FlowLog", {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(logGroup("FlowLogs", "/wwhd/prod/flow-logs")),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    const group = (name, description) =>
      new ec2.SecurityGroup(this, name, { vpc, description, allowAllOutbound: false });
    const lbSg = group("LbSg", "wwhd prod load balancer");
    const apiSg = group("ApiSg", "wwhd prod API tasks");
    const efsSg = group("EfsSg", "wwhd prod EFS mount targets");
    const qdrantSg = group("QdrantSg", "wwhd prod Qdrant task");
    const hostSg = group("QdrantHostSg", "wwhd prod Qdrant container instance");
    const dbSg = group("DbSg", "wwhd prod PostgreSQL");
    for (const port of [80, 443]) {
      lbSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(port), `HTTP(S) ${port} from the internet`);
      lbSg.addIngressRule(ec2.Peer.anyIpv6(), ec2.Port.tcp(port), `HTTP(S) ${port} from the internet`);
    }
    lbSg.connections.allowTo(apiSg, ec2.Port.tcp(API_PORT), "ALB to the API");
    apiSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and the model provider");
    apiSg.connections.allowTo(qdrantSg, ec2.Port.tcp(QDRANT_PORT), "API to Qdrant");
    apiSg.connections.allowTo(dbSg, ec2.Port.tcp(5432), "API to PostgreSQL");
    hostSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), "HTTPS to ECS and ECR");

    // --- data: the retained EFS file system, PostgreSQL, the documents bucket, backups
    const fileSystem = new efs.FileSystem(this, "Efs", {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroup: efsSg,
      encrypted: true,
      kmsKey: key,
      enableAutomaticBackups: true,
      lifecyclePolicy: efs.LifecyclePolicy.AFTER_30_DAYS,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    fileSystem.addAccessPoint("QdrantAccessPoint", {
      path: "/qdrant",
      createAcl: { ownerUid: "1000", ownerGid: "1000", permissions: "750" },
      posixUser: { uid: "1000", gid: "1000" },
    });

    const database = new rds.DatabaseInstance(this, "Db", {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.SMALL),
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [dbSg],
      multiAz: true,
      allocatedStorage: 20,
      maxAllocatedStorage: 100,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      storageEncryptionKey: key,
      iamAuthentication: true,
      credentials: rds.Credentials.fromGeneratedSecret("wwhd_admin", { encryptionKey: key }),
      databaseName: "wwhd",
      backupRetention: cdk.Duration.days(7),
      deletionProtection: true,
      cloudwatchLogsExports: ["postgresql", "upgrade"],
      cloudwatchLogsRetention: RETENTION,
      parameters: { "rds.force_ssl": "1", log_min_duration_statement: "1000" },
      removalPolicy: cdk.RemovalPolicy.SNAPSHOT,
    });
    const dbHost = new ssm.StringParameter(this, "DbHost", {
      parameterName: "/wwhd/prod/database-host",
      stringValue: database.dbInstanceEndpointAddress,
    });

    const accessLogs = new s3.Bucket(this, "AlbLogs", {
      // ALB access logs accept SSE-S3 only, not a KMS key.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: cdk.Duration.days(90) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    const documents = new s3.Bucket(this, "Documents", {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: cdk.Duration.days(30) }],
          noncurrentVersionExpiration: cdk.Duration.days(90),
        },
      ],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });

    // --- platform: images, cluster, secrets, load balancer, service discovery
    const repository = new ecr.Repository(this, "ApiRepository", {
      repositoryName: "wwhd-prod-backend",
      imageScanOnPush: true,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      encryption: ecr.RepositoryEncryption.KMS,
      encryptionKey: key,
      lifecycleRules: [{ tagStatus: ecr.TagStatus.UNTAGGED, maxImageAge: cdk.Duration.days(14) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    // Tasks in private subnets pull Qdrant and the collector through ECR's cache, not Docker Hub.
    for (const [name, upstream, prefix, credentialArn] of [
      ["DockerHub", "registry-1.docker.io", "docker-hub",
        `arn:aws:secretsmanager:${ENV.region}:${ENV.account}:secret:ecr-pullthroughcache/wwhd-docker-hub-AbCdEf`],
      ["EcrPublic", "public.ecr.aws", "ecr-public", undefined],
    ]) {
      new ecr.CfnPullThroughCacheRule(this, `${name}Cache`, {
        ecrRepositoryPrefix: prefix,
        upstreamRegistryUrl: upstream,
        credentialArn,
      });
      new ecr.CfnRepositoryCreationTemplate(this, `${name}Template`, {
        prefix,
        appliedFor: ["PULL_THROUGH_CACHE"],
        imageTagMutability: "MUTABLE",
        encryptionConfiguration: { encryptionType: "KMS", kmsKey: key.keyArn },
        lifecyclePolicy: JSON.stringify({
          rules: [{ rulePriority: 1, selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 10 },
            action: { type: "expire" } }],
        }),
      });
    }

    const cluster = new ecs.Cluster(this, "Cluster", {
      clusterName: "wwhd-cluster",
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      enableFargateCapacityProviders: true,
    });
    const openaiKey = new secretsmanager.Secret(this, "OpenAiApiKey", {
      secretName: "wwhd/prod/openai-api-key",
      encryptionKey: key,
    });
    const jwtSecret = new secretsmanager.Secret(this, "JwtSecret", {
      secretName: "wwhd/prod/jwt-secret",
      encryptionKey: key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });

    const zone = route53.HostedZone.fromHostedZoneAttributes(this, "Zone", HOSTED_ZONE);
    const certificate = new acm.Certificate(this, "Certificate", {
      domainName: DOMAIN,
      validation: acm.CertificateValidation.fromDns(zone),
    });
    const alb = new elbv2.ApplicationLoadBalancer(this, "Alb", {
      vpc,
      internetFacing: true,
      securityGroup: lbSg,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      idleTimeout: cdk.Duration.seconds(600),
      dropInvalidHeaderFields: true,
      deletionProtection: true,
    });
    alb.logAccessLogs(accessLogs, "alb");
    const https = alb.addListener("Https", {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [certificate],
      sslPolicy: elbv2.SslPolicy.TLS13_RES,
      open: false,
    });
    alb.addRedirect({ sourcePort: 80, targetPort: 443, open: false });
    new route53.ARecord(this, "Alias", {
      zone,
      recordName: DOMAIN,
      target: route53.RecordTarget.fromAlias(new route53Targets.LoadBalancerTarget(alb)),
    });
    const namespace = new servicediscovery.PrivateDnsNamespace(this, "Namespace", {
      name: "prod.wwhd.local",
      vpc,
    });

    // --- Qdrant: one Graviton container instance with its data on an encrypted gp3 volume
    const hostRole = new iam.Role(this, "QdrantHostRole", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore")],
    });
    const dataVolume = new ec2.Volume(this, "QdrantData", {
      availabilityZone: AZS[0],
      size: cdk.Size.gibibytes(20),
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      encryptionKey: key,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    // The host attaches the volume at boot (the user data), so it must live in the volume's AZ.
    dataVolume.grantAttachVolumeByResourceTag(hostRole, [dataVolume]);
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      "TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')",
      "ID=$(curl -s -H \"X-aws-ec2-metadata-token: $TOKEN\" http://169.254.169.254/latest/meta-data/instance-id)",
      `aws ec2 attach-volume --region ${ENV.region} --volume-id ${dataVolume.volumeId} --instance-id $ID --device /dev/xvdf`,
      "while [ ! -e /dev/xvdf ]; do sleep 1; done",
      "blkid /dev/xvdf || mkfs -t xfs /dev/xvdf",
      "mkdir -p /data && mount /dev/xvdf /data",
    );
    const launchTemplate = new ec2.LaunchTemplate(this, "QdrantHostTemplate", {
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.SMALL),
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.ARM),
      role: hostRole,
      securityGroup: hostSg,
      userData,
      requireImdsv2: true,
      blockDevices: [{ deviceName: "/dev/xvda", volume: ec2.BlockDeviceVolume.ebs(30, {
        volumeType: ec2.EbsDeviceVolumeType.GP3, encrypted: true }) }],
    });
    const hostGroup = new autoscaling.AutoScalingGroup(this, "QdrantHosts", {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, availabilityZones: [AZS[0]] },
      launchTemplate,
      minCapacity: 1,
      maxCapacity: 1,
      healthChecks: autoscaling.HealthChecks.ec2(),
    });
    const hostCapacity = new ecs.AsgCapacityProvider(this, "QdrantCapacity", {
      autoScalingGroup: hostGroup,
      enableManagedTerminationProtection: false,
      enableManagedDraining: true,
    });
    cluster.addAsgCapacityProvider(hostCapacity);

    const qdrantTask = new ecs.Ec2TaskDefinition(this, "QdrantTask", {
      networkMode: ecs.NetworkMode.AWS_VPC,
      volumes: [{ name: "data", host: { sourcePath: "/data/qdrant" } }],
    });
    const qdrant = qdrantTask.addContainer("qdrant", {
      image: ecs.ContainerImage.fromRegistry(
        `${ENV.account}.dkr.ecr.${ENV.region}.amazonaws.com/docker-hub/qdrant/qdrant:v1.16.2`),
      cpu: 1024,
      memoryLimitMiB: 1024,
      portMappings: [{ containerPort: QDRANT_PORT }],
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: "qdrant", logGroup: logGroup("QdrantLogs", "/ecs/wwhd-qdrant-prod") }),
      healthCheck: { command: ["CMD-SHELL", "bash -c ':> /dev/tcp/127.0.0.1/6333' || exit 1"] },
    });
    qdrant.addMountPoints({ sourceVolume: "data", containerPath: "/qdrant/storage", readOnly: false });
    const qdrantService = new ecs.Ec2Service(this, "Qdrant", {
      cluster,
      taskDefinition: qdrantTask,
      desiredCount: 1,
      // One writer on one volume: stop the old task before starting the new one.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      securityGroups: [qdrantSg],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      capacityProviderStrategies: [{ capacityProvider: hostCapacity.capacityProviderName, weight: 1 }],
      circuitBreaker: { enable: true, rollback: true },
      cloudMapOptions: { name: "qdrant", cloudMapNamespace: namespace, dnsRecordType: servicediscovery.DnsRecordType.A },
    });

    // --- the API: Fargate on Graviton, 1 vCPU / 2 GB, the API and an OpenTelemetry collector
    const apiLogs = logGroup("ApiLogs", "/ecs/wwhd-backend");
    const performanceLogs = logGroup("ApiPerformanceLogs", "/ecs/wwhd-backend/performance", logs.RetentionDays.ONE_WEEK);
    const apiTask = new ecs.FargateTaskDefinition(this, "ApiTask", {
      cpu: 1024,
      memoryLimitMiB: 2048,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    apiTask.addContainer("api", {
      image: ecs.ContainerImage.fromEcrRepository(repository, "v0.1.0"),
      essential: true,
      readonlyRootFilesystem: true,
      portMappings: [{ containerPort: API_PORT }],
      environment: {
        ENVIRONMENT: "prod",
        QDRANT_URL: `http://qdrant.prod.wwhd.local:${QDRANT_PORT}`,
        DOCUMENTS_BUCKET: documents.bucketName,
        ALLOW_ORIGINS: "https://wwhd.ai,https://www.wwhd.ai",
        // Longer than the ALB's idle timeout, or the ALB reuses connections the API has closed.
        UVICORN_TIMEOUT_KEEP_ALIVE: "620",
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4317",
      },
      secrets: {
        OPENAI_API_KEY: ecs.Secret.fromSecretsManager(openaiKey),
        JWT_SECRET: ecs.Secret.fromSecretsManager(jwtSecret),
        DATABASE_HOST: ecs.Secret.fromSsmParameter(dbHost),
      },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: "api", logGroup: apiLogs }),
      healthCheck: { command: ["CMD-SHELL", `curl -f http://localhost:${API_PORT}/health || exit 1`] },
    });
    apiTask.addContainer("otel-collector", {
      image: ecs.ContainerImage.fromRegistry(
        `${ENV.account}.dkr.ecr.${ENV.region}.amazonaws.com/ecr-public/aws-observability/aws-otel-collector:v0.43.3`),
      essential: false,
      readonlyRootFilesystem: true,
      cpu: 128,
      memoryLimitMiB: 256,
      command: ["--config=/etc/ecs/ecs-default-config.yaml"],
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: "otel", logGroup: performanceLogs }),
    });
    apiTask.addToTaskRolePolicy(new iam.PolicyStatement({
      actions: ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"],
      resources: ["*"],
    }));
    documents.grantReadWrite(apiTask.taskRole);
    database.grantConnect(apiTask.taskRole, "wwhd_app");

    const api = new ecs.FargateService(this, "Api", {
      cluster,
      taskDefinition: apiTask,
      desiredCount: 2,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      securityGroups: [apiSg],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: cdk.Duration.seconds(120),
      capacityProviderStrategies: [
        { capacityProvider: "FARGATE", base: 1, weight: 0 },
        { capacityProvider: "FARGATE_SPOT", weight: 1 },
      ],
    });
    const targetGroup = https.addTargets("Api", {
      port: API_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [api.loadBalancerTarget({ containerName: "api", containerPort: API_PORT })],
      deregistrationDelay: cdk.Duration.seconds(30),
      healthCheck: { path: "/health", healthyHttpCodes: "200", interval: cdk.Duration.seconds(30),
        healthyThresholdCount: 2, unhealthyThresholdCount: 3 },
    });
    const scaling = api.autoScaleTaskCount({ minCapacity: 2, maxCapacity: 20 });
    scaling.scaleOnCpuUtilization("Cpu", { targetUtilizationPercent: 60 });
    scaling.scaleOnMemoryUtilization("Memory", { targetUtilizationPercent: 75 });
    scaling.scaleOnRequestCount("Requests", { requestsPerTarget: 500, targetGroup });

    // --- backups: daily, 30 days, a copy in us-east-1; one plan for the file system and one for
    // the Qdrant host's volume, each with its own vault, as the Pulumi components keep them apart
    const copyVault = backup.BackupVault.fromBackupVaultArn(this, "CopyVault",
      `arn:aws:backup:us-east-1:${ENV.account}:backup-vault:wwhd-prod-copy`);
    const backupPlan = (name, resource) => {
      const vault = new backup.BackupVault(this, `${name}Vault`, { encryptionKey: key, removalPolicy: cdk.RemovalPolicy.RETAIN });
      const plan = new backup.BackupPlan(this, `${name}BackupPlan`, { backupVault: vault });
      plan.addRule(new backup.BackupPlanRule({
        ruleName: "daily",
        scheduleExpression: events.Schedule.cron({ hour: "5", minute: "0" }),
        deleteAfter: cdk.Duration.days(30),
        copyActions: [{ destinationBackupVault: copyVault, deleteAfter: cdk.Duration.days(30) }],
      }));
      plan.addSelection(name, { resources: [resource] });
    };
    backupPlan("Efs", backup.BackupResource.fromEfsFileSystem(fileSystem));
    backupPlan("QdrantData", backup.BackupResource.fromArn(
      `arn:aws:ec2:${ENV.region}:${ENV.account}:volume/${dataVolume.volumeId}`));

    // --- monitoring: an alarm topic, the alarms, an error filter, tracing, a dashboard
    const topic = new sns.Topic(this, "Alarms", { topicName: "wwhd-prod-alarms", masterKey: key, enforceSSL: true });
    topic.addSubscription(new subscriptions.EmailSubscription(ALARM_EMAIL));
    const notify = new cwActions.SnsAction(topic);
    const alarms = [];
    const alarm = (name, metric, threshold, comparisonOperator, evaluationPeriods = 3, missing = cloudwatch.TreatMissingData.NOT_BREACHING) => {
      const a = new cloudwatch.Alarm(this, name, {
        metric, threshold, comparisonOperator, evaluationPeriods, treatMissingData: missing,
        alarmDescription: `wwhd prod: ${name}`,
      });
      a.addAlarmAction(notify);
      a.addOkAction(notify);
      alarms.push(a);
      return a;
    };
    const GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
    const LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD;
    const m = (namespace_, metricName, dimensionsMap, statistic = "Average") =>
      new cloudwatch.Metric({ namespace: namespace_, metricName, dimensionsMap, statistic, period: cdk.Duration.minutes(1) });
    const albMetrics = alb.metrics;
    alarm("ApiCpuHigh", api.metricCpuUtilization(), 85, GT);
    alarm("ApiMemoryHigh", api.metricMemoryUtilization(), 85, GT);
    alarm("ApiTasksBelowDesired", m("ECS/ContainerInsights", "RunningTaskCount",
      { ClusterName: "wwhd-cluster", ServiceName: api.serviceName }, "Minimum"), 2, LT, 3, cloudwatch.TreatMissingData.BREACHING);
    alarm("UnhealthyTargets", targetGroup.metrics.unhealthyHostCount(), 0, GT);
    alarm("Target5xx", targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { statistic: "Sum" }), 10, GT);
    alarm("Alb5xx", albMetrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { statistic: "Sum" }), 10, GT);
    alarm("Api4xxRate", new cloudwatch.MathExpression({
      expression: "100 * errors / MAX([requests, 1])",
      usingMetrics: {
        errors: targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_4XX_COUNT, { statistic: "Sum" }),
        requests: targetGroup.metrics.requestCount({ statistic: "Sum" }),
      },
    }), 20, GT);
    alarm("LatencyP95", targetGroup.metrics.targetResponseTime({ statistic: "p95" }), 2, GT);
    alarm("LatencyCritical", targetGroup.metrics.targetResponseTime({ statistic: "p99" }), 5, GT, 2);
    alarm("EfsBurstCreditsLow", m("AWS/EFS", "BurstCreditBalance", { FileSystemId: fileSystem.fileSystemId }, "Minimum"),
      1e12, LT);
    alarm("EfsIoLimit", m("AWS/EFS", "PercentIOLimit", { FileSystemId: fileSystem.fileSystemId }, "Maximum"), 90, GT);
    alarm("QdrantNotRunning", m("ECS/ContainerInsights", "RunningTaskCount",
      { ClusterName: "wwhd-cluster", ServiceName: qdrantService.serviceName }, "Minimum"), 1, LT, 2,
    cloudwatch.TreatMissingData.BREACHING);
    alarm("QdrantHostStatusCheck", m("AWS/EC2", "StatusCheckFailed",
      { AutoScalingGroupName: hostGroup.autoScalingGroupName }, "Maximum"), 0, GT, 2);
    alarm("QdrantVolumeFreeSpaceLow", m("CWAgent", "disk_used_percent",
      { AutoScalingGroupName: hostGroup.autoScalingGroupName, path: "/data" }, "Maximum"), 80, GT);
    alarm("DbCpuHigh", database.metricCPUUtilization(), 80, GT);
    alarm("DbStorageLow", database.metricFreeStorageSpace({ statistic: "Minimum" }), 2 * 1024 ** 3, LT);
    alarm("DbConnectionsHigh", database.metricDatabaseConnections({ statistic: "Maximum" }), 80, GT);
    const errors = new logs.MetricFilter(this, "ApiErrors", {
      logGroup: apiLogs,
      filterPattern: logs.FilterPattern.anyTerm("ERROR", "Traceback"),
      metricNamespace: "wwhd/prod",
      metricName: "ApiErrorLines",
      metricValue: "1",
      defaultValue: 0,
    });
    alarm("ApiErrorLines", errors.metric({ statistic: "Sum", period: cdk.Duration.minutes(5) }), 10, GT, 1);

    new xray.CfnSamplingRule(this, "Sampling", {
      samplingRule: {
        ruleName: "wwhd-prod", priority: 100, fixedRate: 0.05, reservoirSize: 1, serviceName: "wwhd-api",
        serviceType: "*", host: "*", httpMethod: "*", urlPath: "*", resourceArn: "*", version: 1,
      },
    });

    const dashboard = new cloudwatch.Dashboard(this, "Dashboard", { dashboardName: "wwhd-prod" });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: "API CPU / memory", left: [api.metricCpuUtilization(), api.metricMemoryUtilization()] }),
      new cloudwatch.GraphWidget({ title: "Requests", left: [targetGroup.metrics.requestCount()] }),
      new cloudwatch.GraphWidget({ title: "Latency", left: [targetGroup.metrics.targetResponseTime({ statistic: "p95" })] }),
      new cloudwatch.GraphWidget({ title: "Database", left: [database.metricCPUUtilization(), database.metricDatabaseConnections()] }),
    );
    dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: "Alarms", alarms, width: 24 }));

    new cdk.CfnOutput(this, "ServiceUrl", { value: `https://${DOMAIN}` });
    new cdk.CfnOutput(this, "EcrRepositoryUri", { value: repository.repositoryUri });
    new cdk.CfnOutput(this, "DatabaseAddress", { value: database.dbInstanceEndpointAddress });
    new cdk.CfnOutput(this, "AlarmTopicArn", { value: topic.topicArn });
  }
}

/** The app with the prod stack, synthesizing into ``outdir``. */
function buildApp(outdir) {
  // aws-cdk-lib runs its own CloudFormation validator during synth unless told not to; the
  // anchor validates with cfn-lint (run.js), and running both would count that step twice.
  const app = new cdk.App({ outdir, builtinCloudFormationValidation: false });
  new WwhdProdStack(app, "WwhdProd", { env: ENV, stackName: "wwhd-prod" });
  return app;
}

module.exports = { buildApp, STACK_ID: "WwhdProd" };
