// Generated from registry/targets.yaml by `npm run registry:derive`. Do not edit.
import type { Registry } from './registry.ts';

export const BUNDLED_REGISTRY: Registry = {
  "applications": {
    "hello-world": {
      "source": {
        "type": "GITHUB",
        "location": "https://github.com/example-org/hello-world.git",
        "connectionArn": "arn:aws:codeconnections:eu-west-1:123456789012:connection/00000000-0000-0000-0000-000000000000"
      },
      "templatePath": "template.yaml",
      "defaultRef": "main",
      "schedules": [
        {
          "name": "promote-staging-to-prod",
          "from": "staging",
          "to": "prod",
          "schedule": "cron(0 10 ? * MON-FRI *)",
          "timezone": "Europe/Berlin",
          "enabled": true
        }
      ],
      "environments": {
        "staging": {
          "accountId": "111111111111",
          "region": "eu-west-1",
          "deployRoleArn": "arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-hello-deploy-eu-west-1",
          "stackName": "hello-world-staging",
          "artifactsBucket": "crossdeploy-111111111111-eu-west-1-hello",
          "executionRoleArn": "arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-hello-cfn-exec-eu-west-1",
          "capabilities": [
            "CAPABILITY_IAM",
            "CAPABILITY_AUTO_EXPAND"
          ],
          "parameterOverrides": {
            "Stage": "staging"
          },
          "allowedRequesters": {
            "iam": [
              "AWSReservedSSO_Developer_*",
              "arn:aws:iam::123456789012:role/ci-*"
            ],
            "slack": [
              {
                "team": "T0EXAMPLE"
              }
            ],
            "schedule": [],
            "local": []
          },
          "mode": "queued",
          "lockWaitTimeoutSeconds": 21600,
          "promoteFrom": [],
          "allowedRefs": [
            "*"
          ],
          "freezeWindows": [],
          "approvers": {
            "iam": [],
            "slack": [],
            "schedule": [],
            "local": []
          },
          "approval": "none",
          "approvalTimeoutMinutes": 60,
          "allowSelfApproval": false,
          "protectedResources": [],
          "runner": "codebuild"
        },
        "prod": {
          "accountId": "222222222222",
          "region": "eu-west-1",
          "deployRoleArn": "arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-deploy-eu-west-1",
          "externalId": "crossdeploy-prod-7f3a",
          "stackName": "hello-world-prod",
          "artifactsBucket": "crossdeploy-222222222222-eu-west-1-hello",
          "executionRoleArn": "arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-cfn-exec-eu-west-1",
          "capabilities": [
            "CAPABILITY_IAM",
            "CAPABILITY_AUTO_EXPAND"
          ],
          "parameterOverrides": {
            "Stage": "prod"
          },
          "allowedRequesters": {
            "iam": [
              "AWSReservedSSO_Release_*"
            ],
            "slack": [
              {
                "team": "T0EXAMPLE",
                "users": [
                  "U0RELEASE1"
                ]
              }
            ],
            "schedule": [
              "promote-staging-to-prod"
            ],
            "local": []
          },
          "mode": "queued",
          "lockWaitTimeoutSeconds": 21600,
          "promoteFrom": [
            "staging"
          ],
          "allowedRefs": [],
          "freezeWindows": [],
          "approvers": {
            "iam": [],
            "slack": [],
            "schedule": [],
            "local": []
          },
          "approval": "none",
          "approvalTimeoutMinutes": 60,
          "allowSelfApproval": false,
          "protectedResources": [],
          "runner": "codebuild"
        }
      }
    }
  }
};
